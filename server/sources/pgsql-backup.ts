// The `bm/pgsql` part: `pg_dump --format=custom --compress=0` streamed straight into the engine (no temp file, so
// the stream chunker deduplicates unchanged tables between generations; each table's rows are put in key order on
// the way, see pgdump-order.ts), and, from the very same snapshot
// (pg_export_snapshot + pg_dump --snapshot), what single restores read, plus a manifest with per-table
// fingerprints that a database restore checks against (layout in pgsql-manifest.ts). When the host can
// (EntityDataReader.rowExport), a container's export is not stored: the dump's rows are grouped by container
// and the manifest says where each container's rows lie, so the export is derived from those bytes of the dump.

import { PassThrough, Readable } from 'node:stream';
import type pg from 'pg';
import { Archiver, type BackupProgress, type Repository, type SnapshotInfo } from '../engine/index.js';
import type { DirectoryEntity, EntityContainer, EntityDataReader, SnapshotQuery } from '../host/port.js';
import { clientQuery } from '../host/query.js';
import { lowerBackupBackends, type LoweredBackends } from '../pg/backend-priority.js';
import { connect } from '../pg/client.js';
import { redactPassword } from '../pg/redact.js';
import { describe, type ConnectionSettings } from '../pg/settings.js';
import { DumpRowOrder } from './pgdump-order.js';
import { sampleRows } from './pgsql-dictionary.js';
import {
  dumpPath, entityExportPath, manifestText, PG_MANIFEST_FORMAT, PG_MANIFEST_PATH, tableFingerprints, userRecordLine, userRecordsPath,
  type ExportedContainer, type ExportedEntity, type PgManifest,
} from './pgsql-manifest.js';
import { pgTool, ToolError, toolVersion } from './pgsql-tool.js';
import { Prefetch } from './prefetch.js';

export interface DatabasePartOptions {
  connection: ConnectionSettings;
  /** Reads the host's entities and containers; omit to back up the dump alone. */
  entities?: EntityDataReader;
  progress?: BackupProgress;
  /** Called once the snapshot is exported, before anything is read from it (tests write concurrently here). */
  afterSnapshot?: (snapshotId: string) => Promise<void>;
  pgDump?: string;
  /** A table whose rows are more than this is left as dumped (default 256 MiB; exports are then stored as files). */
  maxTableBytes?: number;
  /** Exports larger than this go through the stream chunker, smaller ones are one blob (default 16 KiB). */
  exportStreamThreshold?: number;
}

/**
 * Adds the database part's content to an archiver (which the caller commits): dump, exports, manifest.
 * Everything is read inside one exported snapshot; a failing pg_dump rejects with its message.
 */
async function addDatabase(archiver: Archiver, opts: DatabasePartOptions): Promise<PgManifest> {
  const s = opts.connection;
  const bin = opts.pgDump ?? 'pg_dump';
  const c = await connect(s);
  let c2: pg.Client | undefined;
  let exports: Prefetch<ContainerExport> | undefined;
  let layout: NonNullable<Awaited<ReturnType<NonNullable<EntityDataReader['rowExport']>['layout']>>> | undefined;
  const dumped = new AbortController();
  let lowering: Promise<LoweredBackends> | undefined;
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snap = (await c.query<{ id: string; v: string; pid: number }>(`SELECT pg_export_snapshot() AS id, current_setting('server_version') AS v, pg_backend_pid() AS pid`)).rows[0];
    const pids = [snap.pid];
    opts.progress?.notice?.(`database ${describe(s)}: snapshot ${snap.id}`);
    await opts.afterSnapshot?.(snap.id);

    // While pg_dump runs, the same snapshot is read for the fingerprints (this connection) and the per-entity
    // exports (a second connection that imports the snapshot), the exports buffered up to a bound.
    const fingerprints = tableFingerprints(c);
    fingerprints.catch(() => {});
    let owners: Promise<DirectoryEntity[]> = Promise.resolve([]);
    if (opts.entities) {
      c2 = await connect(s);
      await c2.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await c2.query(`SET TRANSACTION SNAPSHOT '${snap.id.replace(/'/g, "''")}'`);
      pids.push((await c2.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      const q2 = clientQuery(c2);
      const reader = opts.entities;
      owners = reader.owners(q2);
      owners.catch(() => {});
      // Exports derived from the dump's own rows when the host can: they are then not stored a second time.
      if (reader.rowExport) layout = (await reader.rowExport.layout(q2)) ?? undefined;
      if (!layout) exports = new Prefetch(produceExports(reader, q2, owners), (x) => x.data.length, 64 * 1024 * 1024);
    }

    // The dictionary of the dump, the users' records and the manifest (made at most once, when the parent
    // snapshot has none): sampled on a connection of its own in the same snapshot, as `c` computes the
    // fingerprints meanwhile. The records and the manifest name the same users, containers and tables.
    let sampled: Promise<{ rows: Buffer; lowered: LoweredBackends }> | undefined;
    const dictionary = () => (sampled ??= sampleInSnapshot(s, snap.id)).then((x) => x.rows);

    // The dump: pg_dump's stdout goes straight into the archiver; the stream ends only on success.
    const path = dumpPath(s.database);
    const { child, done } = pgTool(bin, ['--format=custom', '--compress=0', `--snapshot=${snap.id}`, '--no-password'], s);
    child.stdin!.end();
    // The work this asks of PostgreSQL at the backup's own priority, where the database is on this machine. Looked
    // for until the dump ends: pg_dump, at the backup's priority too, may take long to connect on a busy machine.
    lowering = lowerBackupBackends(s, { pids, clients: child.pid ? [child.pid] : [] }, { stop: dumped.signal, withinMs: Infinity });
    void done.finally(() => dumped.abort()).catch(() => {});
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    // The archiver may not be reading yet when pg_dump fails; the error reaches it through the stream's state.
    out.on('error', () => {});
    // Rows in key order rather than heap order (see pgdump-order.ts): a few changed rows cost a few chunks.
    const groups = layout && new Map(Object.entries(layout.tables).map(([t, g]) => [t, { column: g.column, via: g.byItem ? layout!.itemContainer : undefined }]));
    const order = new DumpRowOrder(opts.maxTableBytes, groups);
    child.stdout!.pipe(order).pipe(out, { end: false });
    let bytes = 0;
    child.stdout!.on('data', (b: Buffer) => (bytes += b.length));
    const ordered = new Promise<void>((resolve, reject) => {
      order.once('end', resolve);
      order.once('error', reject);
    });
    done.then(
      () => ordered.then(() => out.end(), (e: Error) => out.destroy(e)),
      (e) => out.destroy(e),
    );
    try {
      // Small chunks compressed with a dictionary of the database's own rows (pgsql-dictionary.ts): a row
      // changed costs a chunk of about 4 KiB, which the dictionary compresses as well as a long frame would.
      await archiver.addStream(path, out, { chunker: 'rows', dictionary });
      await done;
    } catch (e) {
      child.kill('SIGTERM');
      // Prefer pg_dump's own message to the stream's "premature close".
      const toolError = await done.then(() => null, (x: Error) => x);
      if (toolError) throw toolError;
      throw e instanceof ToolError ? e : new Error(`dumping ${describe(s)}: ${redactPassword((e as Error).message, s)}`);
    }

    const tables = await fingerprints;
    const entities: ExportedEntity[] = [];
    let rowExport: PgManifest['rowExport'];
    if (layout && (order.stats.passthrough || order.ungrouped.length)) {
      // The dump was not rewritten as expected: no ranges to derive the exports from; export them as before
      // (still inside the snapshot).
      opts.progress?.notice?.(`database ${describe(s)}: exports stored as files (${order.stats.passthrough ?? `rows of ${order.ungrouped.join(', ')} left as dumped`})`);
      exports = new Prefetch(produceExports(opts.entities!, clientQuery(c2!), owners), (x) => x.data.length, 64 * 1024 * 1024);
      layout = undefined;
    }
    if (opts.entities) {
      const all = await owners;
      const key = (domainUid: string, uid: string) => `${domainUid}\0${uid}`;
      const byOwner = new Map<string, ExportedContainer[]>(all.map((o) => [key(o.domainUid, o.uid), []]));
      if (layout) {
        const blocks: NonNullable<PgManifest['rowExport']>['tables'] = {};
        for (const [table, ranges] of order.ranges) {
          const groups = [...ranges];
          if (!groups.length) continue;
          groups.forEach(([, r], i) => {
            if (i && r[0] !== groups[i - 1][1][0] + groups[i - 1][1][1]) throw new Error(`the rows of ${table} are not contiguous in the dump`);
          });
          blocks[table] = { start: groups[0][1][0], groups: groups.map(([g, r]) => [g, r[1]]) };
        }
        rowExport = { intSize: order.integerSize, columns: await tableColumns(c2!, Object.keys(layout.tables)), tables: blocks };
        for (const { container: cont, id } of layout.containers) {
          byOwner.get(key(cont.domainUid, cont.owner))?.push({ uid: cont.uid, type: cont.type, name: cont.name, items: cont.itemCount, path, id });
        }
      } else {
        for await (const { owner, container: cont, data, items } of exports!) {
          const p = entityExportPath(owner.domainUid, owner.uid, cont.uid);
          // Containers beyond a few items go through the stream chunker (items in uid order), so that a few
          // changed items cost a few chunks, not the whole export.
          if (data.length > (opts.exportStreamThreshold ?? 16 * 1024)) await archiver.addStream(p, Readable.from([data]), { chunker: 'stream' });
          else await archiver.addBytes(p, data);
          byOwner.get(key(owner.domainUid, owner.uid))!.push({ uid: cont.uid, type: cont.type, name: cont.name, items, path: p });
        }
      }
      for (const owner of all) {
        const containers = byOwner.get(key(owner.domainUid, owner.uid))!.sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
        entities.push({ ...owner, containers });
      }
    }
    // Each user's directory record, a file per domain: what complete.restore.user reads instead of the dump.
    // After the exports: they share the second connection.
    const users: NonNullable<PgManifest['users']> = [];
    if (opts.entities && c2) {
      const byDomain = new Map<string, [string, string][]>();
      for await (const r of opts.entities.userRecords(clientQuery(c2))) {
        let lines = byDomain.get(r.domainUid);
        if (!lines) byDomain.set(r.domainUid, (lines = []));
        lines.push([r.uid, userRecordLine(r.uid, r.record)]);
      }
      const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
      for (const [domainUid, lines] of [...byDomain].sort(([a], [b]) => order(a, b))) {
        const path = userRecordsPath(domainUid);
        // In uid order: a restore finds one user's line by halving (sorted-lines.ts).
        lines.sort(([a], [b]) => order(a, b));
        await archiver.addStream(path, Readable.from([Buffer.from(lines.map(([, l]) => l).join('\n') + '\n')]), { chunker: 'rows', dictionary });
        users.push({ domainUid, users: lines.length, path, sorted: true });
      }
    }
    const manifest: PgManifest = {
      format: PG_MANIFEST_FORMAT,
      kind: 'pgsql',
      database: s.database,
      serverVersion: snap.v,
      snapshot: snap.id,
      dump: {
        path, bytes, tool: await toolVersion(bin),
        rowOrder: { tables: order.stats.tablesSorted, rows: order.stats.rowsSorted, ...(order.stats.passthrough ? { passthrough: order.stats.passthrough } : {}) },
      },
      tables,
      entities,
      ...(opts.entities ? { users } : {}),
      ...(rowExport ? { rowExport } : {}),
    };
    await archiver.addStream(PG_MANIFEST_PATH, Readable.from([Buffer.from(manifestText(manifest))]), { chunker: 'rows', dictionary });
    if (c2) await c2.query('COMMIT');
    await c.query('COMMIT');
    const lowered = merged(await lowering, await sampled?.then((x) => x.lowered, () => undefined));
    if (lowered?.lowered.length) opts.progress?.notice?.(`database ${describe(s)}: its backends ${lowered.lowered.join(', ')} at the backup's priority`);
    if (lowered?.note) opts.progress?.notice?.(`database ${describe(s)}: backends' priority: ${lowered.note}`);
    return manifest;
  } finally {
    dumped.abort();
    await lowering;
    exports?.stop();
    if (c2) await c2.end().catch(() => {});
    await c.end().catch(() => {});
  }
}

/**
 * The dictionary's rows (pgsql-dictionary.ts), read in the backup's snapshot on a connection of their own, whose
 * backend (its scan of every table) runs at the backup's priority as the dump's does.
 */
async function sampleInSnapshot(s: ConnectionSettings, snapshot: string): Promise<{ rows: Buffer; lowered: LoweredBackends }> {
  const c = await connect(s);
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await c.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`);
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const lowering = lowerBackupBackends(s, { pids: [pid] });
    const rows = await sampleRows(c);
    await c.query('COMMIT');
    return { rows, lowered: await lowering };
  } finally {
    await c.end().catch(() => {});
  }
}

/** Two lowerings' backends and notes as one. */
function merged(a: LoweredBackends | undefined, b: LoweredBackends | undefined): LoweredBackends | undefined {
  if (!a || !b) return a ?? b;
  const note = [a.note, b.note].filter(Boolean).join('; ');
  return { lowered: [...a.lowered, ...b.lowered], ...(note ? { note } : {}) };
}

/** Columns of tables (`schema.table`) in attribute order, which is pg_dump's COPY order, with their types. */
async function tableColumns(c: pg.Client, tables: string[]): Promise<Record<string, { name: string; type: string }[]>> {
  const out: Record<string, { name: string; type: string }[]> = {};
  for (const t of tables) {
    const r = await c.query<{ name: string; type: string }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
        WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
      [t],
    );
    out[t] = r.rows;
  }
  return out;
}

interface ContainerExport {
  owner: DirectoryEntity;
  container: EntityContainer;
  data: Buffer;
  items: number;
}

/** Every exported container of the snapshot, as the bytes of its export file. */
async function* produceExports(reader: EntityDataReader, q: SnapshotQuery, ownersP: Promise<DirectoryEntity[]>): AsyncGenerator<ContainerExport> {
  const owners = await ownersP;
  const ownerOf = new Map(owners.map((o) => [`${o.domainUid}\0${o.uid}`, o]));
  const pack = (lines: string[]) => Buffer.from(lines.join('\n') + '\n', 'utf8');
  if (reader.exportAll) {
    for await (const { container, lines } of reader.exportAll(q)) {
      const owner = ownerOf.get(`${container.domainUid}\0${container.owner}`);
      if (owner) yield { owner, container, data: pack(lines), items: lines.length - 1 };
    }
    return;
  }
  for (const owner of owners) {
    for (const container of await reader.containers(q, owner)) {
      const lines: string[] = [];
      for await (const l of reader.exportContainer(q, container)) lines.push(l);
      yield { owner, container, data: pack(lines), items: lines.length - 1 };
    }
  }
}

export interface DatabaseBackupOptions extends DatabasePartOptions {
  repo: Repository;
  server: string;
  tag?: string;
  parent?: string;
  meta?: Record<string, unknown>;
  time?: Date;
}

export interface DatabaseBackupResult {
  snapshot: SnapshotInfo;
  manifest: PgManifest;
}

/** One `bm/pgsql` snapshot; on any failure nothing is committed and the error says why. */
export async function backupDatabase(opts: DatabaseBackupOptions): Promise<DatabaseBackupResult> {
  const archiver = new Archiver(opts.repo, { server: opts.server, tag: opts.tag ?? 'bm/pgsql', parent: opts.parent, progress: opts.progress, time: opts.time });
  let manifest: PgManifest;
  try {
    manifest = await addDatabase(archiver, opts);
  } catch (e) {
    await archiver.abort();
    throw e;
  }
  const snapshot = await archiver.commit({
    meta: { ...opts.meta, kind: 'pgsql', database: manifest.database, pgSnapshot: manifest.snapshot, entities: manifest.entities.length },
  });
  return { snapshot, manifest };
}

