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
  });
});

describe('readManifestFor', () => {
  const entity = (uid: string, kind: ExportedEntity['kind'], extra: Partial<ExportedEntity> = {}): ExportedEntity => ({
    uid, domainUid: 'acme.lan', kind, name: uid.toLowerCase(), displayName: `Entity ${uid}`, email: null, ouPath: [], archived: false, deleted: false,
    containers: [], ...extra,
  });
  const manifest = (entities: ExportedEntity[]): PgManifest => ({
    format: PG_MANIFEST_FORMAT, kind: 'pgsql', database: 'bj', serverVersion: '16', snapshot: 's',
    dump: { path: '/dump/bj.pgdump', bytes: 10, tool: 'pg_dump', rowOrder: { tables: 1, rows: 2 } },
    tables: { 'public.t': { rows: 2, hash: '3' } }, entities, users: [{ domainUid: 'acme.lan', users: 1, path: '/users/acme.lan.jsonl' }],
    rowExport: { intSize: 4, columns: { 't': [{ name: 'id', type: 'bigint' }] }, tables: { t: { start: 5, groups: [['1', 3], ['2', 2]] } } },
  });
  const cal = { uid: 'calendar:domain-cal', type: 'calendar' as const, name: 'Rooms', items: 3, path: '/dump/bj.pgdump', id: '1' };
  const users = Array.from({ length: 2000 }, (_, i) => entity(`U${i}`, 'USER', { ouPath: ['Sales'], containers: [{ ...cal, uid: `calendar:Default:U${i}`, id: String(i) }] }));
  const others = [
    entity('acme.lan', 'DOMAIN', { containers: [cal] }),
    entity('OU1', 'ORG_UNIT', { name: 'Sales' }),
    // Lines that hold the strings looked for elsewhere: read, then left out.
    entity('M1', 'MAILSHARE', { displayName: 'about U17 and "kind":"DOMAIN"', containers: [{ ...cal, uid: 'mailshare-cal', name: 'U17' }] }),
  ];
  const full = manifest([...users.slice(0, 1000), ...others, ...users.slice(1000)]);

  it('gives the manifest with the entity, the domains and the units only, read from its line', async () => {
    const s = await snapshotOf({ [PG_MANIFEST_PATH]: manifestText(full) });
    expect(await readManifest(repo, s)).toEqual(full);
    const { entities, ...rest } = full;
    const got = await readManifestFor(repo, s, 'U17');
    expect(got).toEqual({ ...rest, entities: [users[17], others[0], others[1]] });
    expect((await readManifestFor(repo, s, 'U1999')).entities).toEqual([others[0], others[1], users[1999]]);
    // A domain's own calendar: its domain's line.
    expect((await readManifestFor(repo, s, cal.uid)).entities).toEqual([others[0], others[1]]);
    expect((await readManifestFor(repo, s, 'nobody')).entities).toEqual([others[0], others[1]]);
    expect(entities.length).toBe(2003);
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
