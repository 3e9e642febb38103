import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import path from 'node:path';
import ICAL from 'ical.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDir, Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import type { ConnectionSettings } from '../../server/pg/settings.js';
import { withClient } from '../../server/pg/client.js';
import { decodeItem } from '../../server/host/reference/entities.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { backupDatabase } from '../../server/sources/pgsql-backup.js';
import { containerExport, readManifest, readUserRecord, tableFingerprints, type TableFingerprint } from '../../server/sources/pgsql-manifest.js';
import { clientQuery } from '../../server/host/query.js';
import { restoreDatabase } from '../../server/sources/pgsql-restore.js';
import { sandbox, type Sandbox } from '../host/helpers.js';

let sb: Sandbox;
let repoDir: string;
let repo: Repository;
let host: ReferenceHost;

beforeAll(async () => {
  sb = await sandbox('pgsql');
  await seedReference({ connection: sb.db, root: sb.root, users: 60, files: false });
  repoDir = await mkdtemp(path.join(tmpdir(), 'dp-repo-pgsql-'));
  repo = await Repository.init(new LocalStorage(repoDir));
  host = new ReferenceHost(sb.root, sb.db);
});
afterAll(async () => {
  await repo?.close().catch(() => {});
  await sb?.cleanup();
  if (repoDir) await rm(repoDir, { recursive: true, force: true });
});

const q = <T = Record<string, unknown>>(db: ConnectionSettings, sql: string, params: unknown[] = []) =>
  withClient(db, async (c) => (await c.query(sql, params)).rows as T[]);

/** Every table's rows as text, sorted: two databases with equal results hold the same rows, row for row. */
async function exactTables(db: ConnectionSettings): Promise<Record<string, { rows: number; md5: string }>> {
  return withClient(db, async (c) => {
    await c.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'`);
    const tables = (await c.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)).rows;
    const out: Record<string, { rows: number; md5: string }> = {};
    for (const { t } of tables) {
      const r = (await c.query(`SELECT count(*)::int AS rows, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS md5 FROM "${t}" x`)).rows[0];
      out[t] = r;
    }
    return out;
  });
}

/** Items of a container with their rows, ids left out (they are the database's own), as of now. */
async function containerState(db: ConnectionSettings, uid: string, table = 't_calendar_vevent') {
  const order = table === 't_calendar_vevent' ? 'r.recurid_timestamp NULLS FIRST, r.dtstart_timestamp' : 'r.item_id';
  return q(db, `SELECT i.uid, i.version, i.displayname, i.created, i.updated,
                       (SELECT json_agg(to_jsonb(r) - 'item_id' ORDER BY ${order})
                          FROM ${table} r WHERE r.item_id = i.id)::text AS rows
                  FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1 ORDER BY i.uid`, [uid]);
}

describe('bm/pgsql part', () => {
  it('backs up twice (the second adds far less), and generation 1 restores into a new database equal row for row', async () => {
    const users = await q<{ uid: string }>(sb.db, `SELECT entry_uid AS uid FROM t_directory_entry WHERE kind = 'USER' ORDER BY entry_uid LIMIT 2`);
    const [u1, u2] = users.map((u) => u.uid);
    const cal1 = `calendar:Default:${u1}`;
    const before: Record<string, TableFingerprint> = await withClient(sb.db, tableFingerprints);
    const exactBefore = await exactTables(sb.db);
    const calBefore = await containerState(sb.db, cal1);
    const containersBefore = await q<{ uid: string }>(sb.db, `SELECT uid FROM t_container WHERE owner = $1 AND container_type IN ('calendar','addressbook','todolist','notes','webappdata') ORDER BY uid`, [u1]);
    const bookBefore = await containerState(sb.db, `book:Contacts_${u1}`, 't_addressbook_vcard');
    expect(calBefore.length).toBeGreaterThan(5);

    const g1 = await backupDatabase({ repo, server: 'bm-master', connection: sb.db, entities: host.entityData });

    // Change the data: delete a user's events, update contacts, add rows.
    await q(sb.db, `DELETE FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1)`, [cal1]);
    await q(sb.db, `UPDATE t_addressbook_vcard SET note = 'updated after generation 1', title = 'CTO'
                     WHERE item_id IN (SELECT i.id FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1)`, [`book:Contacts_${u1}`]);
    await q(sb.db, `WITH c AS (SELECT id FROM t_container WHERE uid = $1),
                         i AS (INSERT INTO t_container_item (container_id, uid, displayname) SELECT c.id, 'added-' || g, 'Added ' || g FROM c, generate_series(1, 25) g RETURNING id, displayname)
                    INSERT INTO t_calendar_vevent (item_id, summary, dtstart_timestamp, dtstart_precision) SELECT id, displayname, '2026-03-01 10:00', 'DateTime' FROM i`, [`calendar:Default:${u2}`]);
    const after = await withClient(sb.db, tableFingerprints);
    const exactAfter = await exactTables(sb.db);
    expect(after).not.toEqual(before);

    const g2 = await backupDatabase({ repo, server: 'bm-master', connection: sb.db, entities: host.entityData });
    const added1 = g1.snapshot.summary.bytesAdded;
    const added2 = g2.snapshot.summary.bytesAdded;
    console.log(`bm/pgsql: dump ${g1.manifest.dump.bytes} B; generation 1 added ${added1} B, generation 2 added ${added2} B (${((100 * added2) / added1).toFixed(1)}%)`);
    expect(g2.snapshot.parent).toBe(g1.snapshot.id);
    expect(added2).toBeLessThan(added1 / 4);

    // Restoring generation 1 gives the database as it was then; generation 2 as it is now.
    const r1 = sb.extraDb('restore1');
    const res = await restoreDatabase({ repo, snapshot: g1.snapshot, target: r1 });
    expect(res.tables).toBe(Object.keys(before).length);
    expect(await withClient(r1, tableFingerprints)).toEqual(before);
    expect(await exactTables(r1)).toEqual(exactBefore);
    expect(await containerState(r1, cal1)).toEqual(calBefore);
    const r2 = sb.extraDb('restore2');
    await restoreDatabase({ repo, snapshot: g2.snapshot, target: r2 });
    expect(await withClient(r2, tableFingerprints)).toEqual(after);
    expect(await exactTables(r2)).toEqual(exactAfter);
    expect(exactAfter).not.toEqual(exactBefore);
    expect(await containerState(r2, cal1)).toEqual([]);

    // Restoring into an existing database is refused, and leaves it alone.
    await expect(restoreDatabase({ repo, snapshot: g1.snapshot, target: r2 })).rejects.toThrow(/already exists/);
    expect(await withClient(r2, tableFingerprints)).toEqual(after);

    // The per-entity export of generation 1: exactly the user's containers and items as they were then.
    const manifest = await readManifest(repo, g1.snapshot);
    const entity = manifest.entities.find((e) => e.uid === u1)!;
    expect(entity.kind).toBe('USER');
    expect(entity.containers.map((c) => c.uid).sort()).toEqual(containersBefore.map((c) => c.uid));
    // Each user's directory record, in its domain's users file: the one complete.restore.user reads.
    const live = async (domainUid: string, uid: string) => withClient(sb.db, async (c) => {
      const out: string[] = [];
      for await (const r of host.entityData.userRecords(clientQuery(c), { domainUid, uid })) out.push(r.record);
      return out;
    });
    const usersOfDomain = manifest.entities.filter((e) => e.kind === 'USER' && e.domainUid === entity.domainUid).length;
    const file = manifest.users!.find((f) => f.domainUid === entity.domainUid)!;
    expect(file.users).toBe(usersOfDomain);
    // In uid order (found by halving), every user of the domain: the same record as read line by line.
    expect(file.sorted).toBe(true);
    const saved = await readUserRecord(repo, g1.snapshot, file.path, u1, true);
    expect(saved).toBe(await readUserRecord(repo, g1.snapshot, file.path, u1));
    expect(JSON.parse(saved!)).toEqual(JSON.parse((await live(entity.domainUid, u1))[0]));
    expect(JSON.parse(saved!).groups.length).toBeGreaterThan(0);
    for (const e of manifest.entities.filter((x) => x.kind === 'USER' && x.domainUid === entity.domainUid)) {
      expect(await readUserRecord(repo, g1.snapshot, file.path, e.uid, true)).toBe(await readUserRecord(repo, g1.snapshot, file.path, e.uid));
    }
    expect(await readUserRecord(repo, g1.snapshot, file.path, 'no-such-user', true)).toBeNull();
    expect(await readUserRecord(repo, g1.snapshot, file.path, 'no-such-user')).toBeNull();

    const calExport = entity.containers.find((c) => c.uid === cal1)!;
    const lines: any[] = [];
    for await (const l of containerExport(repo, g1.snapshot, manifest, calExport, host.entityData)) lines.push(JSON.parse(l));
    expect(lines[0].container.uid).toBe(cal1);
    expect(lines.slice(1).map((l) => decodeItem(lines[0], 'calendar', l).item.uid)).toEqual(calBefore.map((r) => r.uid));
    // Rows are arrays in the order of the columns the first line lists.
    expect(lines[0].columns.vevent).toContain('summary');
    expect(Array.isArray(lines[1].item)).toBe(true);
    expect(calExport.items).toBe(calBefore.length);

    // Lossless: putting generation 1's export back gives the rows as they were (ids aside).
    const w = await host.writers.database.replaceContainer(containerExport(repo, g1.snapshot, manifest, calExport, host.entityData));
    expect(w.items).toBe(calBefore.length);
    expect(await containerState(sb.db, cal1)).toEqual(calBefore);
    const bookExport = entity.containers.find((c) => c.uid === `book:Contacts_${u1}`)!;
    await host.writers.database.replaceContainer(containerExport(repo, g1.snapshot, manifest, bookExport, host.entityData));
    expect(await containerState(sb.db, `book:Contacts_${u1}`, 't_addressbook_vcard')).toEqual(bookBefore);

    // ICS and VCF renderings parse with ical.js.
    const ics = await host.renderer.render('calendar', containerExport(repo, g1.snapshot, manifest, calExport, host.entityData));
    const cal = new ICAL.Component(ICAL.parse(ics));
    const uids = new Set(cal.getAllSubcomponents('vevent').map((v) => v.getFirstPropertyValue('uid')));
    expect([...uids].sort()).toEqual(calBefore.map((r) => r.uid).sort());
    const recurring = cal.getAllSubcomponents('vevent').find((v) => v.hasProperty('rrule'));
    expect(recurring).toBeDefined();
    const vcf = await host.renderer.render('addressbook', containerExport(repo, g1.snapshot, manifest, bookExport, host.entityData));
    const cards = ICAL.parse(vcf) as unknown[];
    const list = (Array.isArray(cards[0]) ? cards : [cards]) as unknown[];
    expect(list.length).toBe(bookBefore.length);
    const names = list.map((c) => new ICAL.Component(c as any).getFirstPropertyValue('fn'));
    expect(names.every((n) => typeof n === 'string' && n.length > 0)).toBe(true);
    const todo = entity.containers.find((c) => c.type === 'todolist')!;
    const todoIcs = new ICAL.Component(ICAL.parse(await host.renderer.render('todolist', containerExport(repo, g1.snapshot, manifest, todo, host.entityData))));
    expect(todoIcs.getAllSubcomponents('vtodo').length).toBe(todo.items);
  });

  it('sees concurrent writes in both the dump and the entity exports, or in neither', async () => {
    const [{ uid: owner }] = await q<{ uid: string }>(sb.db, `SELECT entry_uid AS uid FROM t_directory_entry WHERE kind = 'USER' ORDER BY entry_uid DESC LIMIT 1`);
    const calUid = `calendar:Default:${owner}`;
    let stop = false;
    let written = 0;
    let committed = 0;
    const insert = (uid: string) =>
      q(sb.db, `WITH i AS (INSERT INTO t_container_item (container_id, uid, displayname) SELECT id, $2, $2 FROM t_container WHERE uid = $1 RETURNING id)
                INSERT INTO t_calendar_vevent (item_id, summary, dtstart_timestamp, dtstart_precision) SELECT id, $2, '2026-04-01 09:00', 'DateTime' FROM i`, [calUid, uid]);
    const writer = (async () => {
      while (!stop) {
        await insert(`concurrent-${written++}`);
        committed++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    while (committed < 5) await new Promise((r) => setTimeout(r, 5));
    let writtenAtSnapshot = -1;
    const result = await backupDatabase({
      repo, server: 'bm-master', connection: sb.db, entities: host.entityData,
      afterSnapshot: async () => {
        writtenAtSnapshot = written;
        // Committed after the snapshot was taken: must be in neither the dump nor the exports.
        await insert('after-snapshot-marker');
        await new Promise((r) => setTimeout(r, 50));
      },
    });
    stop = true;
    await writer;
    expect(writtenAtSnapshot).toBeGreaterThan(0);

    const restored = sb.extraDb('concurrent');
    await restoreDatabase({ repo, snapshot: result.snapshot, target: restored });
    const inDump = (await q<{ uid: string }>(restored, `SELECT i.uid FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1 ORDER BY i.uid`, [calUid])).map((r) => r.uid);
    const exp = result.manifest.entities.find((e) => e.uid === owner)!.containers.find((c) => c.uid === calUid)!;
    const inExport: string[] = [];
    let head;
    for await (const l of containerExport(repo, result.snapshot, result.manifest, exp, host.entityData)) {
      const row = JSON.parse(l);
      if (row.container) head = row;
      else inExport.push(decodeItem(head, 'calendar', row).item.uid as string);
    }
    expect(inExport).toEqual(inDump);
    expect(inDump).not.toContain('after-snapshot-marker');
    const concurrentInDump = inDump.filter((u) => u.startsWith('concurrent-')).length;
    const liveConcurrent = Number((await q<{ n: string }>(sb.db, `SELECT count(*) n FROM t_container_item WHERE uid LIKE 'concurrent-%'`))[0].n);
    // Some writes landed before the snapshot, and some after it (while the backup ran).
    expect(concurrentInDump).toBeGreaterThan(0);
    expect(liveConcurrent).toBeGreaterThan(concurrentInDump);
  });

  it('fails the part with the tool message when pg_dump fails, and never shows the password', async () => {
    const before = (await repo.listSnapshots()).length;
    const secret = 'Sup3r-s3cret-pw';
    // Server down (nothing listens on port 1).
    const down = { ...sb.db, port: 1, password: secret };
    const e1 = await backupDatabase({ repo, server: 'bm-master', connection: down }).catch((e: Error) => e);
    expect(e1).toBeInstanceOf(Error);
    expect((e1 as Error).message).toMatch(/127\.0\.0\.1:1/);
    expect((e1 as Error).message).not.toContain(secret);
    // Wrong credentials: a role that does not exist.
    const wrongUser = { ...sb.db, user: 'no_such_role_dp', password: secret };
    const e2 = await backupDatabase({ repo, server: 'bm-master', connection: wrongUser }).catch((e: Error) => e);
    expect((e2 as Error).message).toMatch(/no_such_role_dp/);
    expect((e2 as Error).message).not.toContain(secret);
    // pg_dump itself failing mid-stream (here a stand-in that writes some bytes, prints its password and fails,
    // as a version mismatch would): the part fails with the tool's message, password removed.
    const dir = await mkdtemp(path.join(tmpdir(), 'dp-fake-pgdump-'));
    const fake = path.join(dir, 'pg_dump');
    await writeFile(fake, '#!/bin/sh\nhead -c 100000 /dev/zero\necho "pg_dump: error: aborting because of server version mismatch (password $PGPASSWORD)" >&2\nexit 1\n');
    await chmod(fake, 0o755);
    const e3 = await backupDatabase({ repo, server: 'bm-master', connection: { ...sb.db, password: secret }, pgDump: fake }).catch((e: Error) => e);
    await rm(dir, { recursive: true, force: true });
    expect((e3 as Error).message).toMatch(/server version mismatch/);
    expect((e3 as Error).message).not.toContain(secret);
    expect((e3 as Error).message).toContain('***');
    // An export that fails after the dump went well fails the part too.
    const broken = {
      ...host.entityData,
      rowExport: undefined,
      async *exportAll() {
        yield* [];
        throw new Error('export exploded');
      },
    };
    await expect(backupDatabase({ repo, server: 'bm-master', connection: sb.db, entities: broken })).rejects.toThrow(/export exploded/);
    const brokenLayout = {
      ...host.entityData,
      rowExport: { ...host.entityData.rowExport!, layout: async () => { throw new Error('layout exploded'); } },
    };
    await expect(backupDatabase({ repo, server: 'bm-master', connection: sb.db, entities: brokenLayout })).rejects.toThrow(/layout exploded/);
    // No snapshot was written by any of them.
    expect((await repo.listSnapshots()).length).toBe(before);
  });
});

describe('the dump compressed with a dictionary of its rows', () => {
  it('is made once and reused: after rows updated at scattered places the next generation adds small chunks, restores row for row and checks clean', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dp-repo-pgsql-dictionary-'));
    const fresh = await Repository.init(new LocalStorage(dir));
    try {
      const dumpNode = async (snap: Parameters<typeof readDir>[1]) => (await readDir(fresh, snap, '/dump')).find((n) => n.name.endsWith('.pgdump'))!;
      const g1 = await backupDatabase({ repo: fresh, server: 'bm-master', connection: sb.db, entities: host.entityData });
      const n1 = await dumpNode(g1.snapshot);
      expect(n1.dictionary).toMatch(/^[0-9a-f]{64}$/);
      // The dump's chunks are small (the repository's rows chunker) and compressed with it.
      const locs = n1.content!.map((id) => fresh.blobLocation(id));
      expect(Math.max(...locs.map((l) => l.rawLength))).toBeLessThanOrEqual(fresh.config.chunkers.rows!.max);
      expect(locs.filter((l) => l.dictionary === n1.dictionary).length).toBeGreaterThan(locs.length / 2);

      // 2% of the contacts and events changed, one row here and there.
      await q(sb.db, `UPDATE t_addressbook_vcard SET note = coalesce(note, '') || ' [new phone]' WHERE item_id % 50 = 7`);
      await q(sb.db, `UPDATE t_calendar_vevent SET sequence = sequence + 1, description = coalesce(description, '') || ' [moved]' WHERE item_id % 50 = 11`);
      const exact = await exactTables(sb.db);
      const g2 = await backupDatabase({ repo: fresh, server: 'bm-master', connection: sb.db, entities: host.entityData });
      const n2 = await dumpNode(g2.snapshot);
      expect(n2.dictionary).toBe(n1.dictionary);
      expect(n2.content).not.toEqual(n1.content);
      const added1 = g1.snapshot.summary.bytesAdded;
      const added2 = g2.snapshot.summary.bytesAdded;
      console.log(`bm/pgsql with a dictionary: generation 1 added ${added1} B, generation 2 (scattered rows) added ${added2} B (${((100 * added2) / added1).toFixed(1)}%)`);
      expect(added2).toBeLessThan(added1 / 2);

      const target = sb.extraDb('restore_dictionary');
      await restoreDatabase({ repo: fresh, snapshot: g2.snapshot, target });
      expect(await exactTables(target)).toEqual(exact);
      const r = await (await import('../../server/engine/index.js')).check(fresh, { readData: true });
      expect(r.errors).toEqual([]);
    } finally {
      await fresh.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('exports derived from the dump', () => {
  it("give every container's lines as the host exports them, reading only that container's rows; without rowExport, or with a table over the limit, export files with the same lines", async () => {
    const fresh = await Repository.init(new LocalStorage(await mkdtemp(path.join(tmpdir(), 'dp-repo-derived-'))));
    try {
      const { snapshot, manifest } = await backupDatabase({ repo: fresh, server: 'bm-master', connection: sb.db, entities: host.entityData });
      expect(manifest.format).toBe(2);
      expect(manifest.rowExport?.columns['public.t_calendar_vevent'].map((c) => c.name)).toContain('summary');
      const { clientQuery } = await import('../../server/host/query.js');
      await withClient(sb.db, async (c) => {
        const q = clientQuery(c);
        const { containers } = (await host.entityData.rowExport!.layout(q))!;
        const live = new Map(containers.map((x) => [x.container.uid, x.container]));
        let compared = 0;
        for (const e of manifest.entities) {
          for (const ct of e.containers) {
            expect(ct.path).toBe(manifest.dump.path);
            expect(manifest.rowExport!.tables['public.t_container'].groups.map(([g]) => g)).toContain(ct.id);
            const got: unknown[] = [];
            for await (const l of containerExport(fresh, snapshot, manifest, ct, host.entityData)) got.push(JSON.parse(l));
            const want: unknown[] = [];
            for await (const l of host.entityData.exportContainer(q, live.get(ct.uid)!)) want.push(JSON.parse(l));
            expect(got).toEqual(want);
            expect(got.length - 1).toBe(ct.items);
            compared++;
          }
        }
        expect(compared).toBe(containers.length);
      });
      // No export files: the part holds the dump, the users files and the manifest.
      const top = (await readDir(fresh, snapshot, '/')).map((n) => n.name).sort();
      expect(top).toEqual(['dump', 'manifest.json', 'users']);

      // A host without rowExport, and a dump that could not be rewritten (a table over the limit), store files.
      const noRows = await backupDatabase({ repo: fresh, server: 'bm-master', connection: sb.db, entities: { ...host.entityData, rowExport: undefined } });
      const tooLarge = await backupDatabase({ repo: fresh, server: 'bm-master', connection: sb.db, entities: host.entityData, maxTableBytes: 4096 });
      expect(tooLarge.manifest.dump.rowOrder.passthrough).toMatch(/larger than 4096/);
      for (const { snapshot: s2, manifest: m2 } of [noRows, tooLarge]) {
        expect(m2.rowExport).toBeUndefined();
        const ct = m2.entities.find((e) => e.containers.some((c) => c.items > 3))!.containers.find((c) => c.items > 3)!;
        expect(ct.path).toMatch(/^\/entities\//);
        const lines: unknown[] = [];
        for await (const l of containerExport(fresh, s2, m2, ct, host.entityData)) lines.push(JSON.parse(l));
        expect(lines.length - 1).toBe(ct.items);
        const derived = manifest.entities.flatMap((e) => e.containers).find((c) => c.uid === ct.uid)!;
        const want: unknown[] = [];
        for await (const l of containerExport(fresh, snapshot, manifest, derived, host.entityData)) want.push(JSON.parse(l));
        expect(lines).toEqual(want);
      }
    } finally {
      await fresh.close();
    }
  });
});

describe('reference entity exports', () => {
  it('gives the same lines in bulk as container by container', async () => {
    const { clientQuery } = await import('../../server/host/query.js');
    await withClient(sb.db, async (c) => {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const q = clientQuery(c);
      const bulk = new Map<string, string[]>();
      let containers = 0;
      for await (const { container, lines } of host.entityData.exportAll!(q)) {
        bulk.set(container.uid, lines);
        containers++;
      }
      const owners = await host.entityData.owners(q);
      let compared = 0;
      for (const owner of owners) {
        for (const cont of await host.entityData.containers(q, owner)) {
          const lines: string[] = [];
          for await (const l of host.entityData.exportContainer(q, cont)) lines.push(l);
          expect(bulk.get(cont.uid), cont.uid).toEqual(lines);
          compared++;
        }
      }
      await c.query('COMMIT');
      expect(compared).toBe(containers);
      expect(compared).toBeGreaterThan(100);
    });
  });
});

describe('table fingerprints', () => {
  it('do not depend on the session time zone or date style', async () => {
    const db = sb.extraDb('fingerprint');
    await withClient({ ...db, database: 'postgres' }, (c) => c.query(`CREATE DATABASE "${db.database}"`));
    await withClient(db, (c) => c.query(`CREATE TABLE t (at timestamptz, d interval, f float8, b bytea);
      INSERT INTO t VALUES ('2026-01-05 10:00:00+01', '1 day 2 hours', 0.1, '\\x0102'), (now(), '3 months', 1e-20, NULL)`));
    const a = await withClient(db, async (c) => {
      await c.query(`SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'German'; SET extra_float_digits = 0; SET bytea_output = 'escape'`);
      return tableFingerprints(c);
    });
    const b = await withClient(db, tableFingerprints);
    expect(a).toEqual(b);
    expect(a['public.t'].rows).toBe(2);
  });
});

// Renicing the database server's processes takes root (or its own user), as on the machines the tests run on.
describe.runIf(process.platform === 'linux' && process.getuid?.() === 0)("the part's work in PostgreSQL at the backup's priority", () => {
  it("lowers every backend it uses: its snapshot's sessions, the dictionary's sampling scan, and pg_dump's, even when pg_dump connects late", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dp-slow-pgdump-'));
    const fresh = await Repository.init(new LocalStorage(await mkdtemp(path.join(tmpdir(), 'dp-repo-prio-'))));
    // A pg_dump that takes 11 s to connect, as one at low priority may on a busy machine, and whose output is
    // not read for its first 3 s: its backend then lives at least that long (the part looks for it four times a
    // second), however fast this machine dumps the database. (exec: the part finds pg_dump's backend by the
    // client port of the process it started.)
    const slow = path.join(dir, 'pg_dump');
    await writeFile(slow, '#!/bin/bash\n[ "$1" = --version ] || sleep 11\nexec pg_dump "$@" > >(sleep 3; exec cat)\n');
    await chmod(slow, 0o755);
    const notices: string[] = [];
    setPriority(6); // this thread, which asks for the part's work, as the backup process's does
    try {
      await backupDatabase({ repo: fresh, server: 'bm-master', connection: sb.db, entities: host.entityData, pgDump: slow, progress: { notice: (m) => notices.push(m) } });
    } finally {
      setPriority(0);
      await fresh.close();
      await rm(dir, { recursive: true, force: true });
    }
    expect(notices.filter((n) => n.includes('priority'))).toEqual([expect.stringMatching(/: its backends \d+, \d+, \d+, \d+ at the backup's priority$/)]);
  }, 120_000);
});
