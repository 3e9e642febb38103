import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archiver, Repository, type SnapshotInfo } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import {
  manifestText, PG_MANIFEST_FORMAT, PG_MANIFEST_PATH, readManifest, readManifestFor, readUserRecord, userRecordLine,
  type ExportedEntity, type PgManifest,
} from '../../server/sources/pgsql-manifest.js';

// The readers a restore of one entity uses read only what that entity needs: its line of the users file (found
// across blob boundaries, the others not parsed) and its line of the manifest's entity list.

let dir: string;
let repo: Repository;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dp-manifest-readers-'));
  repo = await Repository.init(new LocalStorage(dir));
});
afterAll(async () => {
  await repo?.close().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function snapshotOf(files: Record<string, string>): Promise<SnapshotInfo> {
  const a = new Archiver(repo, { server: 'core', tag: 'bm/pgsql' });
  for (const [p, text] of Object.entries(files)) await a.addStream(p, [Buffer.from(text)], { chunker: 'stream' });
  return a.commit();
}

/** What `run` read from the repository's packs (bytes), and its value. */
async function counted<T>(run: () => Promise<T>): Promise<{ bytes: number; value: T }> {
  const storage = repo.storage as LocalStorage;
  const read = storage.read.bind(storage);
  let bytes = 0;
  storage.read = async (type, name, offset, length) => {
    const b = await read(type, name, offset, length);
    if (type === 'data') bytes += b.length;
    return b;
  };
  try {
    const value = await run();
    return { bytes, value };
  } finally {
    storage.read = read;
  }
}

describe('readUserRecord', () => {
  it('finds any user of a users file of many blobs, and only a line that starts with that uid', async () => {
    const uids = Array.from({ length: 3000 }, (_, i) => `user-${String(i).padStart(4, '0')}`);
    // Each record holds the next user as a line starts: a match inside a line must not count.
    const record = (i: number) => JSON.stringify({ login: `l${i}`, next: { uid: uids[(i + 1) % uids.length], record: 1 }, pad: 'x'.repeat(i % 97) });
    const lines = uids.map((u, i) => userRecordLine(u, record(i)));
    const s = await snapshotOf({ '/users/a.jsonl': lines.join('\n') + '\n', '/users/b.jsonl': lines.slice(0, 50).join('\n') });
    const node = (await repo.loadTree(s.tree)).nodes.find((n) => n.name === 'users')!;
    const files = (await repo.loadTree(node.subtree!)).nodes;
    expect(files.find((f) => f.name === 'a.jsonl')!.content!.length).toBeGreaterThan(20);
    for (const i of [0, 1, 7, 500, 1234, 2998, 2999, ...Array.from({ length: 30 }, (_, k) => k * 97 + 3)]) {
      expect(JSON.parse((await readUserRecord(repo, s, '/users/a.jsonl', uids[i]))!)).toEqual(JSON.parse(record(i)));
    }
    // The last line without its newline; a uid that is the start of another; one that is not there.
    expect(JSON.parse((await readUserRecord(repo, s, '/users/b.jsonl', uids[49]))!)).toEqual(JSON.parse(record(49)));
    expect(await readUserRecord(repo, s, '/users/a.jsonl', 'user-000')).toBeNull();
    expect(await readUserRecord(repo, s, '/users/a.jsonl', 'nobody')).toBeNull();

    // Its lines in uid order (as a backup writes it): the same answers, each from a few KiB of a file of 20,000
    // users (once its trees were read), where the unsorted read goes through the file up to the user.
    const many = Array.from({ length: 20_000 }, (_, i) => `user-${String(i).padStart(5, '0')}`);
    const text = many.map((u, i) => userRecordLine(u, record(i % 3000))).join('\n') + '\n';
    const sorted = await snapshotOf({ '/users/c.jsonl': text, '/users/d.jsonl': lines.slice(0, 50).join('\n') });
    await readUserRecord(repo, sorted, '/users/c.jsonl', 'nobody', true);
    const far = await counted(() => readUserRecord(repo, sorted, '/users/c.jsonl', many[19_999]));
    expect(JSON.parse(far.value!)).toEqual(JSON.parse(record(19_999 % 3000)));
    for (const i of [0, 1, 7, 500, 9999, 19_998, 19_999, ...Array.from({ length: 20 }, (_, k) => k * 997 + 3)]) {
      const { bytes, value } = await counted(() => readUserRecord(repo, sorted, '/users/c.jsonl', many[i], true));
      expect(JSON.parse(value!)).toEqual(JSON.parse(record(i % 3000)));
      expect(bytes).toBeLessThan(far.bytes / 4);
    }
    expect(JSON.parse((await readUserRecord(repo, sorted, '/users/d.jsonl', uids[49], true))!)).toEqual(JSON.parse(record(49)));
    expect(JSON.parse((await readUserRecord(repo, sorted, '/users/d.jsonl', uids[0], true))!)).toEqual(JSON.parse(record(0)));
    for (const missing of ['user-0000', 'nobody', '', 'user-299999', 'a']) expect(await readUserRecord(repo, sorted, '/users/c.jsonl', missing, true)).toBeNull();
  });
});

describe('readManifestFor', () => {
  const entity = (uid: string, kind: ExportedEntity['kind'], extra: Partial<ExportedEntity> = {}): ExportedEntity => ({
    uid, domainUid: 'acme.lan', kind, name: uid.toLowerCase(), displayName: `Entity ${uid}`, email: null, ouPath: [], archived: false, deleted: false,
    containers: [], ...extra,
  });
  const cal = { uid: 'calendar:domain-cal', type: 'calendar' as const, name: 'Rooms', items: 3, path: '/dump/bj.pgdump', id: '5000' };
  const users = Array.from({ length: 2000 }, (_, i) => entity(`U${i}`, 'USER', { ouPath: ['Sales'], containers: [{ ...cal, uid: `calendar:Default:U${i}`, id: String(i) }] }));
  const others = [
    entity('acme.lan', 'DOMAIN', { containers: [cal] }),
    entity('OU1', 'ORG_UNIT', { name: 'Sales' }),
    // Lines that hold the strings looked for elsewhere: read, then left out.
    entity('M1', 'MAILSHARE', { displayName: 'about U17 and "kind":"DOMAIN"', containers: [{ ...cal, uid: 'mailshare-cal', name: 'U17', id: '6000' }] }),
  ];
  const groups = (ids: string[]): [string, number][] => ids.map((id, i) => [id, 10 + (i % 7)]);
  const full: PgManifest = {
    format: PG_MANIFEST_FORMAT, kind: 'pgsql', database: 'bj', serverVersion: '16', snapshot: 's',
    dump: { path: '/dump/bj.pgdump', bytes: 10, tool: 'pg_dump', rowOrder: { tables: 1, rows: 2 } },
    tables: { 'public.t': { rows: 2, hash: '3' } },
    entities: [...users.slice(0, 1000), ...others, ...users.slice(1000)],
    users: [{ domainUid: 'acme.lan', users: 1, path: '/users/acme.lan.jsonl' }],
    rowExport: {
      intSize: 4, columns: { 'public.t_a': [{ name: 'id', type: 'bigint' }] },
      tables: {
        'public.t_a': { start: 5, groups: groups(['5000', ...users.map((_, i) => String(i)), '6000']) },
        'public.t_b': { start: 90_000, groups: groups(users.map((_, i) => String(i)).reverse()) },
        'public.t_c': { start: 200_000, groups: [] },
      },
    },
  };
  /** Where a group's rows lie, from a manifest's groups. */
  const rangeOf = (m: PgManifest, table: string, id: string) => {
    let at = m.rowExport!.tables[table].start;
    for (const [g, len] of m.rowExport!.tables[table].groups) {
      if (g === id) return [at, len];
      at += len;
    }
    return null;
  };
  const byPlace = (list: ExportedEntity[]) => list.map((e) => e.uid);

  it('gives the manifest with the entity, the domains and the units, and the row groups of its containers only', async () => {
    const s = await snapshotOf({ [PG_MANIFEST_PATH]: manifestText(full) });
    // Read whole, the same manifest (domains and units first in the list, then the others in uid order).
    const whole = await readManifest(repo, s);
    expect({ ...whole, entities: [] }).toEqual({ ...full, entities: [] });
    expect(byPlace(whole.entities)).toEqual(['acme.lan', 'OU1', ...full.entities.map((e) => e.uid).filter((u) => u !== 'acme.lan' && u !== 'OU1').sort()]);
    const byUid = (list: ExportedEntity[]) => [...list].sort((a, b) => (a.uid < b.uid ? -1 : 1));
    expect(byUid(whole.entities)).toEqual(byUid(full.entities));
    const { entities, rowExport, ...rest } = full;
    for (const [uid, want] of [['U17', [others[0], others[1], users[17]]], ['U1999', [others[0], others[1], users[1999]]], [cal.uid, [others[0], others[1]]], ['nobody', [others[0], others[1]]]] as const) {
      const got = await readManifestFor(repo, s, uid);
      expect({ ...got, entities: [], rowExport: undefined }).toEqual({ ...rest, entities: [], rowExport: undefined });
      expect(got.entities).toEqual(want);
      expect(got.rowExport!.intSize).toBe(4);
      expect(got.rowExport!.columns).toEqual(rowExport!.columns);
      const ids = uid === cal.uid ? ['5000'] : uid === 'nobody' ? [] : [uid.slice(1)];
      for (const table of Object.keys(rowExport!.tables)) {
        const named = got.rowExport!.tables[table].groups.filter(([g]) => g !== '');
        expect(named.map(([g]) => g)).toEqual(ids.filter((id) => rangeOf(full, table, id)));
        for (const id of ids) expect(rangeOf(got, table, id)).toEqual(rangeOf(full, table, id));
        if (table === 'public.t_b' && ids[0] !== '5000') expect(named.length).toBe(ids.length);
        // Nothing past the last group it needs.
        const last = got.rowExport!.tables[table].groups.at(-1);
        expect(last?.[0] ?? 'none').not.toBe('');
      }
    }
    expect(entities.length).toBe(2003);
  });

  it('reads a few KiB of the manifest of 2,000 users to find one (its line found by halving), and nothing else is left out', async () => {
    const s = await snapshotOf({ [PG_MANIFEST_PATH]: manifestText({ ...full, rowExport: undefined }) });
    const wholeBytes = Buffer.byteLength(manifestText({ ...full, rowExport: undefined }));
    await readManifestFor(repo, s, 'nobody');
    for (const [uid, want] of [['U0', users[0]], ['U999', users[999]], ['U1999', users[1999]], ['M1', others[2]]] as const) {
      const { bytes, value } = await counted(() => readManifestFor(repo, s, uid));
      expect(value.entities).toEqual([others[0], others[1], want]);
      expect(bytes).toBeLessThan(wholeBytes / 4);
    }
    expect((await readManifestFor(repo, s, 'U1999x')).entities).toEqual([others[0], others[1]]);
    expect((await readManifestFor(repo, s, '')).entities).toEqual([others[0], others[1]]);
    // Domains and units alone: no other entity.
    const frames = await snapshotOf({ [PG_MANIFEST_PATH]: manifestText({ ...full, entities: [others[0], others[1]] }) });
    expect((await readManifestFor(repo, frames, 'U1')).entities).toEqual([others[0], others[1]]);
    expect((await readManifest(repo, frames)).entities).toEqual([others[0], others[1]]);
  });

  it('finds the domains and units anywhere in a manifest written with them in directory order', async () => {
    const { entities, ...top } = full;
    const s = await snapshotOf({ [PG_MANIFEST_PATH]: JSON.stringify(top).slice(0, -1) + ',"entities":[\n' + entities.map((e) => JSON.stringify(e)).join(',\n') + '\n]}\n' });
    const got = await readManifestFor(repo, s, 'U1999');
    expect(got.entities).toEqual([others[0], others[1], users[1999]]);
    expect(got.rowExport).toEqual(full.rowExport);
    expect((await readManifestFor(repo, s, 'U17')).entities).toEqual([users[17], others[0], others[1]]);
  });

  it('reads the groups of a table whose ids need escapes', async () => {
    const odd = entity('Q1', 'USER', { containers: [{ ...cal, uid: 'q-cal', id: 'a"b\\c' }] });
    const m: PgManifest = { ...full, entities: [others[0], odd], rowExport: { ...full.rowExport!, tables: { 'public.t_q': { start: 7, groups: [['x', 3], ['a"b\\c', 4], ['y', 5]] } } } };
    const s = await snapshotOf({ [PG_MANIFEST_PATH]: manifestText(m) });
    const got = await readManifestFor(repo, s, 'Q1');
    expect(got.entities).toEqual([others[0], odd]);
    expect(got.rowExport!.tables).toEqual({ 'public.t_q': { start: 7, groups: [['', 3], ['a"b\\c', 4]] } });
  });

  it('reads a manifest not laid out one entity per line whole', async () => {
    const s = await snapshotOf({ [PG_MANIFEST_PATH]: JSON.stringify(full) });
    expect(await readManifestFor(repo, s, 'U17')).toEqual(full);
  });

  it('refuses a manifest of a newer format', async () => {
    const s = await snapshotOf({ [PG_MANIFEST_PATH]: manifestText({ ...full, format: PG_MANIFEST_FORMAT + 1 }) });
    await expect(readManifestFor(repo, s, 'U17')).rejects.toThrow(/newer than this program reads/);
  });
});
