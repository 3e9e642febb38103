// The `bm/pgsql` part: `pg_dump --format=custom --compress=0` streamed straight into the engine (no temp file, so
// the stream chunker deduplicates unchanged tables between generations; each table's rows are put in key order on
// the way, see pgdump-order.ts), and, from the very same snapshot
// (pg_export_snapshot + pg_dump --snapshot), the per-entity exports single restores read, plus a manifest
// with per-table fingerprints that a database restore checks against.
//
// Part layout:
//   /manifest.json                                      what is in the part (see PgManifest)
//   /dump/<database>.pgdump                             the custom-format dump
//   /entities/<domainUid>/<entityUid>/<container>.jsonl one lossless export per container

import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import type pg from 'pg';
import { Archiver, openFile, type BackupProgress, type Repository, type SnapshotInfo } from '../engine/index.js';
import { type ConnectionSettings, describe, ident, pgToolEnv, redact } from '../host/connection.js';
import type { DirectoryEntity, EntityContainer, EntityDataReader, SnapshotQuery } from '../host/port.js';
import { clientQuery } from '../host/query.js';
import { DumpRowOrder } from './pgdump-order.js';
import { connect, createDatabase, databaseExists, dropDatabase, withClient } from '../host/db.js';

export const PG_MANIFEST_PATH = '/manifest.json';
export const PG_MANIFEST_FORMAT = 1;

export interface TableFingerprint {
  rows: number;
  /** Order-independent sum of the rows' hashes (decimal text): equal tables give equal sums. */
  hash: string;
}

export interface ExportedContainer {
  uid: string;
  type: EntityContainer['type'];
  name: string;
  items: number;
  path: string;
}

export interface ExportedEntity extends DirectoryEntity {
  containers: ExportedContainer[];
}

export interface PgManifest {
  format: number;
  kind: 'pgsql';
  database: string;
  serverVersion: string;
  /** The exported snapshot both the dump and the exports were read in. */
  snapshot: string;
  /** `rowOrder`: tables whose rows were put in key order; `passthrough` says why the rest was left as dumped. */
  dump: { path: string; bytes: number; tool: string; rowOrder: { tables: number; rows: number; passthrough?: string } };
  tables: Record<string, TableFingerprint>;
  entities: ExportedEntity[];
}

export interface DatabasePartOptions {
  connection: ConnectionSettings;
  /** Reads the host's entities and containers; omit to back up the dump alone. */
  entities?: EntityDataReader;
  progress?: BackupProgress;
  /** Called once the snapshot is exported, before anything is read from it (tests write concurrently here). */
  afterSnapshot?: (snapshotId: string) => Promise<void>;
  pgDump?: string;
  /** Exports larger than this go through the stream chunker, smaller ones are one blob (default 16 KiB). */
  exportStreamThreshold?: number;
}

/** File-name-safe form of a uid (container uids hold `:`; a `/` would make a directory). */
export function pathSegment(s: string): string {
  return s.replace(/[%/\\\x00-\x1f]/g, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase());
}

export function entityExportPath(domainUid: string, entityUid: string, containerUid: string): string {
  return `/entities/${pathSegment(domainUid)}/${pathSegment(entityUid)}/${pathSegment(containerUid)}.jsonl`;
}

export function dumpPath(database: string): string {
  return `/dump/${pathSegment(database)}.pgdump`;
}

/** Per-table row count and order-independent hash, read through `q` (inside a snapshot, or on a restored copy). */
export async function tableFingerprints(c: pg.ClientBase): Promise<Record<string, TableFingerprint>> {
  // Rows are hashed as text: pin every setting that changes how a value prints, so that the backup and a restore
  // made from another session (another time zone, date style…) agree.
  await c.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';
                 SET extra_float_digits = 3; SET bytea_output = 'hex'`);
  const tables = await c.query<{ schemaname: string; tablename: string }>(
    `SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
  );
  const out: Record<string, TableFingerprint> = {};
  for (const t of tables.rows) {
    const name = `${ident(t.schemaname)}.${ident(t.tablename)}`;
    const r = await c.query<{ rows: string; hash: string | null }>(
      `SELECT count(*) AS rows, sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint::numeric)::text AS hash FROM ${name} t`,
    );
    out[`${t.schemaname}.${t.tablename}`] = { rows: Number(r.rows[0].rows), hash: r.rows[0].hash ?? '0' };
  }
  return out;
}

class ToolError extends Error {}

/** Runs a PostgreSQL tool; its failure carries the tool's own message, with the password removed. */
function pgTool(bin: string, args: string[], s: ConnectionSettings): { child: ChildProcess; done: Promise<void> } {
  const child = spawn(bin, args, { env: pgToolEnv(s), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    if (stderr.length < 16_384) stderr += b.toString();
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (e) => reject(new ToolError(`${bin} could not be started: ${redact(e.message, s)}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        const why = redact(stderr.trim(), s) || (signal ? `killed by ${signal}` : `exit code ${code}`);
        reject(new ToolError(`${bin} of ${describe(s)} failed: ${why}`));
      }
    });
  });
  done.catch(() => {});
  return { child, done };
}

async function toolVersion(bin: string): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(bin, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.once('error', () => resolve('unknown'));
    c.once('close', () => resolve(out.trim() || 'unknown'));
  });
}

/**
 * Adds the database part's content to an archiver (which the caller commits): dump, exports, manifest.
 * Everything is read inside one exported snapshot; a failing pg_dump rejects with its message.
 */
export async function addDatabase(archiver: Archiver, opts: DatabasePartOptions): Promise<PgManifest> {
  const s = opts.connection;
  const bin = opts.pgDump ?? 'pg_dump';
  const c = await connect(s);
  let c2: pg.Client | undefined;
  let exports: Prefetch<ContainerExport> | undefined;
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snap = (await c.query<{ id: string; v: string }>(`SELECT pg_export_snapshot() AS id, current_setting('server_version') AS v`)).rows[0];
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
      const q2 = clientQuery(c2);
      const reader = opts.entities;
      owners = reader.owners(q2);
      owners.catch(() => {});
      exports = new Prefetch(produceExports(reader, q2, owners), (x) => x.data.length, 64 * 1024 * 1024);
    }

    // The dump: pg_dump's stdout goes straight into the archiver; the stream ends only on success.
    const path = dumpPath(s.database);
    const { child, done } = pgTool(bin, ['--format=custom', '--compress=0', `--snapshot=${snap.id}`, '--no-password'], s);
    child.stdin!.end();
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    // The archiver may not be reading yet when pg_dump fails; the error reaches it through the stream's state.
    out.on('error', () => {});
    // Rows in key order rather than heap order (see pgdump-order.ts): a few changed rows cost a few chunks.
    const order = new DumpRowOrder();
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
      await archiver.addStream(path, out, { chunker: 'stream' });
      await done;
    } catch (e) {
      child.kill('SIGTERM');
      // Prefer pg_dump's own message to the stream's "premature close".
      const toolError = await done.then(() => null, (x: Error) => x);
      if (toolError) throw toolError;
      throw e instanceof ToolError ? e : new Error(`dumping ${describe(s)}: ${redact((e as Error).message, s)}`);
    }

    const tables = await fingerprints;
    const entities: ExportedEntity[] = [];
    if (exports) {
      const all = await owners;
      const key = (domainUid: string, uid: string) => `${domainUid}\0${uid}`;
      const byOwner = new Map<string, ExportedContainer[]>(all.map((o) => [key(o.domainUid, o.uid), []]));
      for await (const { owner, container: cont, data, items } of exports) {
        const p = entityExportPath(owner.domainUid, owner.uid, cont.uid);
        // Containers beyond a few items go through the stream chunker (items in uid order), so that a few
        // changed items cost a few chunks, not the whole export.
        if (data.length > (opts.exportStreamThreshold ?? 16 * 1024)) await archiver.addStream(p, Readable.from([data]), { chunker: 'stream' });
        else await archiver.addBytes(p, data);
        byOwner.get(key(owner.domainUid, owner.uid))!.push({ uid: cont.uid, type: cont.type, name: cont.name, items, path: p });
      }
      for (const owner of all) {
        const containers = byOwner.get(key(owner.domainUid, owner.uid))!.sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
        entities.push({ ...owner, containers });
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
    };
    // One entity per line, after the fields that change every time: the stream chunker then stores only the
    // lines of entities that changed, not the whole list again (it is megabytes on a large directory).
    const { entities: list, ...top } = manifest;
    const text = JSON.stringify(top).slice(0, -1) + ',"entities":[\n' + list.map((e) => JSON.stringify(e)).join(',\n') + '\n]}\n';
    await archiver.addStream(PG_MANIFEST_PATH, Readable.from([Buffer.from(text)]), { chunker: 'stream' });
    if (c2) await c2.query('COMMIT');
    await c.query('COMMIT');
    return manifest;
  } finally {
    exports?.stop();
    if (c2) await c2.end().catch(() => {});
    await c.end().catch(() => {});
  }
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

/** Runs an async source ahead of its consumer, holding at most `limit` (by `size`) in memory. */
class Prefetch<T> implements AsyncIterable<T> {
  private readonly buf: T[] = [];
  private held = 0;
  private ended = false;
  private stopped = false;
  private failure: unknown;
  private wakeConsumer: (() => void) | null = null;
  private wakeProducer: (() => void) | null = null;

  constructor(
    source: AsyncIterable<T>,
    private readonly size: (t: T) => number,
    limit: number,
  ) {
    void (async () => {
      try {
        for await (const x of source) {
          if (this.stopped) break;
          this.buf.push(x);
          this.held += size(x);
          this.wake('consumer');
          while (this.held > limit && !this.stopped) await new Promise<void>((r) => (this.wakeProducer = r));
        }
      } catch (e) {
        this.failure = e;
      } finally {
        this.ended = true;
        this.wake('consumer');
      }
    })();
  }

  private wake(who: 'consumer' | 'producer'): void {
    const f = who === 'consumer' ? this.wakeConsumer : this.wakeProducer;
    if (who === 'consumer') this.wakeConsumer = null;
    else this.wakeProducer = null;
    f?.();
  }

  stop(): void {
    this.stopped = true;
    this.wake('producer');
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.buf.length) {
        const x = this.buf.shift()!;
        this.held -= this.size(x);
        this.wake('producer');
        yield x;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wakeConsumer = r));
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

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of stream) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

/**
 * The entities of a generation as the restore browser lists them: every entity of the part's manifest, flagged
 * `deleted` when the live directory no longer has it.
 */
export function generationEntities(manifest: PgManifest, live: Pick<DirectoryEntity, 'uid' | 'domainUid'>[]): ExportedEntity[] {
  const alive = new Set(live.map((e) => `${e.domainUid}\0${e.uid}`));
  return manifest.entities.map((e) => ({ ...e, deleted: !alive.has(`${e.domainUid}\0${e.uid}`) }));
}

export async function readManifest(repo: Repository, snapshot: SnapshotInfo): Promise<PgManifest> {
  const raw = await readAll(openFile(repo, snapshot, PG_MANIFEST_PATH));
  const m = JSON.parse(raw.toString('utf8')) as PgManifest;
  if (m.kind !== 'pgsql' || typeof m.format !== 'number') throw new Error(`snapshot ${snapshot.id.slice(0, 8)} is not a database part`);
  if (m.format > PG_MANIFEST_FORMAT) throw new Error(`database part format ${m.format} is newer than this program reads (${PG_MANIFEST_FORMAT})`);
  return m;
}

/** The lines of one container export of a generation (reads only that stream). */
export async function* readEntityExport(repo: Repository, snapshot: SnapshotInfo, path: string): AsyncGenerator<string> {
  let buf = '';
  for await (const chunk of openFile(repo, snapshot, path)) {
    buf += (chunk as Buffer).toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  if (buf) yield buf;
}

export interface DatabaseRestoreOptions {
  repo: Repository;
  snapshot: SnapshotInfo;
  /** Where to restore: a database that must not exist yet, on this server. */
  target: ConnectionSettings;
  progress?: { notice?(message: string): void; bytes?(done: number, total: number): void };
  pgRestore?: string;
}

export interface DatabaseRestoreResult {
  database: string;
  tables: number;
  rows: number;
  bytes: number;
  durationMs: number;
}

/**
 * Restores the dump of a `bm/pgsql` snapshot into a new database: pg_restore reads the dump from the repository
 * as a stream (no temp file), in one transaction; then every table's row count and hash are checked against
 * the manifest. On any failure the new database is dropped.
 */
export async function restoreDatabase(opts: DatabaseRestoreOptions): Promise<DatabaseRestoreResult> {
  const started = Date.now();
  const t = opts.target;
  const manifest = await readManifest(opts.repo, opts.snapshot);
  if (await databaseExists(t, t.database)) {
    throw new Error(`database ${t.database} already exists on ${t.host}:${t.port}: a database restore creates a new database`);
  }
  await createDatabase(t, t.database);
  try {
    const bin = opts.pgRestore ?? 'pg_restore';
    const { child, done } = pgTool(bin, ['--format=custom', '--exit-on-error', '--single-transaction', '--no-password', `--dbname=${t.database}`], t);
    child.stdout!.resume();
    const dump = openFile(opts.repo, opts.snapshot, manifest.dump.path);
    let bytes = 0;
    dump.on('data', (b: Buffer) => {
      bytes += b.length;
      opts.progress?.bytes?.(bytes, manifest.dump.bytes);
    });
    dump.pipe(child.stdin!);
    // pg_restore stopping early closes its stdin: that is reported by `done`, not as a pipe error.
    child.stdin!.on('error', () => {});
    const readFailed = new Promise<never>((_, reject) => dump.once('error', (e) => {
      child.kill('SIGTERM');
      reject(new Error(`reading the dump from snapshot ${opts.snapshot.id.slice(0, 8)}: ${e.message}`));
    }));
    await Promise.race([done, readFailed]);
    opts.progress?.notice?.(`restored ${manifest.database} into ${t.database}; checking tables`);

    const restored = await withClient(t, (c) => tableFingerprints(c));
    const problems: string[] = [];
    for (const [name, want] of Object.entries(manifest.tables)) {
      const got = restored[name];
      if (!got) problems.push(`${name}: missing`);
      else if (got.rows !== want.rows) problems.push(`${name}: ${got.rows} rows, expected ${want.rows}`);
      else if (got.hash !== want.hash) problems.push(`${name}: content differs from the backup`);
    }
    for (const name of Object.keys(restored)) if (!manifest.tables[name]) problems.push(`${name}: not in the backup`);
    if (problems.length) throw new Error(`restored database ${t.database} does not match the backup: ${problems.slice(0, 5).join('; ')}`);
    return {
      database: t.database,
      tables: Object.keys(restored).length,
      rows: Object.values(restored).reduce((n, x) => n + x.rows, 0),
      bytes,
      durationMs: Date.now() - started,
    };
  } catch (e) {
    await dropDatabase(t, t.database).catch(() => {});
    throw e;
  }
}
