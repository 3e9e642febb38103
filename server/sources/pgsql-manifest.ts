// What a `bm/pgsql` part holds besides the dump: its layout, the manifest (per-table fingerprints and every
// directory entity with its exported containers), and the readers a restore uses (only the streams it needs).
//
// Part layout:
//   /manifest.json                                      what is in the part (see PgManifest)
//   /dump/<database>.pgdump                             the custom-format dump
//   /entities/<domainUid>/<entityUid>/<container>.jsonl one lossless export per container (format 1, or a host
//                                                       without rowExport; format 2 derives them from the dump)
//   /users/<domainUid>.jsonl                            each user's directory record, one line per user, in uid order

import type pg from 'pg';
import { findNode, openFile, readFileBytes, type Repository, type SnapshotInfo } from '../engine/index.js';
import type { DirectoryEntity, EntityContainer } from '../host/port.js';
import { quoteIdent } from '../pg/ident.js';
import type { EntityDataReader } from '../host/port.js';
import { copyFields, jsonValue } from './copy-rows.js';
import { manifestFor, SORTED_ENTITIES_END, sortedEntitiesAt } from './manifest-text.js';
import { findSortedLine, readLine, uidKey } from './sorted-lines.js';

export { manifestText } from './manifest-text.js';

export const PG_MANIFEST_PATH = '/manifest.json';
/** 2: exports derived from the dump's rows (`rowExport`, containers' `rows`); 1: export files only. */
export const PG_MANIFEST_FORMAT = 2;

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
  /** The export file; in format 2 with `rows`, the dump the export is derived from. */
  path: string;
  /** Format 2 with derived exports: the container's database id, its rows' group in `rowExport.tables`. */
  id?: string;
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
  /**
   * Per domain, the file of its users' directory records (what complete.restore.user reads); absent in
   * generations written before them, whose users come back from a scratch copy of the whole dump. `sorted`: its
   * lines in uid order (found by halving, see sorted-lines.ts); earlier generations' are not.
   */
  users?: { domainUid: string; users: number; path: string; sorted?: boolean }[];
  /**
   * Format 2, when the exports are derived from the dump: the size of the dump's integers (its row framing) and
   * the columns of every table a container's rows come from, in COPY order, with their types.
   */
  rowExport?: {
    intSize: number;
    columns: Record<string, { name: string; type: string }[]>;
    /**
     * Per table, where its rows start in the dump and its groups (container ids) in dump order with the length
     * of their rows: a group's rows start where the lengths before it end. Lengths, not offsets, so that a
     * generation where a few containers changed has a manifest that differs in those few numbers only.
     */
    tables: Record<string, { start: number; groups: [string, number][] }>;
  };
}

/** File-name-safe form of a uid (container uids hold `:`; a `/` would make a directory). */
function pathSegment(s: string): string {
  return s.replace(/[%/\\\x00-\x1f]/g, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase());
}

export function entityExportPath(domainUid: string, entityUid: string, containerUid: string): string {
  return `/entities/${pathSegment(domainUid)}/${pathSegment(entityUid)}/${pathSegment(containerUid)}.jsonl`;
}

export function userRecordsPath(domainUid: string): string {
  return `/users/${pathSegment(domainUid)}.jsonl`;
}

/** One line of a users file: the uid first, so that a reader finds a user without parsing the others. */
export function userRecordLine(uid: string, record: string): string {
  return `{"uid":${JSON.stringify(uid)},"record":${record}}`;
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
    const name = `${quoteIdent(t.schemaname)}.${quoteIdent(t.tablename)}`;
    const r = await c.query<{ rows: string; hash: string | null }>(
      `SELECT count(*) AS rows, sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint::numeric)::text AS hash FROM ${name} t`,
    );
    out[`${t.schemaname}.${t.tablename}`] = { rows: Number(r.rows[0].rows), hash: r.rows[0].hash ?? '0' };
  }
  return out;
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
  return checkedManifest(JSON.parse((await readFileBytes(repo, snapshot, PG_MANIFEST_PATH)).toString('utf8')) as PgManifest, snapshot);
}

function checkedManifest(m: PgManifest, snapshot: SnapshotInfo): PgManifest {
  if (m.kind !== 'pgsql' || typeof m.format !== 'number') throw new Error(`snapshot ${snapshot.id.slice(0, 8)} is not a database part`);
  if (m.format > PG_MANIFEST_FORMAT) throw new Error(`database part format ${m.format} is newer than this program reads (${PG_MANIFEST_FORMAT})`);
  // Where its text puts the sorted entities (manifest-text.ts): the layout of the file, not part of what it says.
  delete (m as { sortedEntities?: string }).sortedEntities;
  return m;
}

/**
 * The manifest with, of its entities, only those a restore of entity `uid` needs: the entity itself (or the
 * domain whose calendar or address book `uid` is), and the domains and organisational units (few, for the
 * entry's unit path); of the row groups, only those of its containers (see manifest-text.ts). A restore of
 * one user on a large installation then parses a few lines of a manifest of megabytes.
 */
export async function readManifestFor(repo: Repository, snapshot: SnapshotInfo, uid: string): Promise<PgManifest> {
  const check = (head: PgManifest) => checkedManifest(head, snapshot);
  // Its other entities sorted by uid (manifestText): what precedes them, then that entity's line alone.
  const size = (await findNode(repo, snapshot, PG_MANIFEST_PATH)).size;
  const from = sortedEntitiesAt(await readLine(repo, snapshot, PG_MANIFEST_PATH, 0, size), size);
  if (from !== null) {
    const before = await readFileBytes(repo, snapshot, PG_MANIFEST_PATH, { start: 0, end: from });
    const line = await findSortedLine(repo, snapshot, PG_MANIFEST_PATH, from, size - SORTED_ENTITIES_END.length, uid, uidKey);
    const raw = Buffer.concat([before, ...(line ? [line] : []), Buffer.from(SORTED_ENTITIES_END)]);
    const m = manifestFor(raw, uid, check);
    if (!m) throw new Error(`snapshot ${snapshot.id.slice(0, 8)}: the database part manifest is damaged (its sorted entity list)`);
    return checkedManifest(m, snapshot);
  }
  const raw = await readFileBytes(repo, snapshot, PG_MANIFEST_PATH);
  return checkedManifest(manifestFor(raw, uid, check) ?? (JSON.parse(raw.toString('utf8')) as PgManifest), snapshot);
}

/**
 * One user's directory record from its domain's users file (parses only that user's line), or null when it is
 * not there. `sorted` (the file's lines in uid order): found by halving, a few small reads; otherwise the file
 * is read up to that user's line.
 */
export async function readUserRecord(repo: Repository, snapshot: SnapshotInfo, path: string, uid: string, sorted = false): Promise<string | null> {
  if (sorted) {
    const line = await findSortedLine(repo, snapshot, path, 0, (await findNode(repo, snapshot, path)).size, uid, uidKey);
    return line ? lineRecord(line.toString('utf8')) : null;
  }
  const prefix = Buffer.from(`{"uid":${JSON.stringify(uid)},`);
  let carry: Buffer = Buffer.alloc(0);
  let found = -1;
  for await (const chunk of openFile(repo, snapshot, path)) {
    const buf: Buffer = carry.length ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    if (found < 0) {
      for (let at = buf.indexOf(prefix); at >= 0; at = buf.indexOf(prefix, at + 1)) {
        if (at === 0 || buf[at - 1] === 10) {
          found = at;
          break;
        }
      }
    }
    if (found >= 0) {
      const end = buf.indexOf(10, found);
      if (end >= 0) return lineRecord(buf.toString('utf8', found, end));
      carry = buf.subarray(found);
      found = 0;
    } else {
      // Keep the last (partial) line: the user's may start there.
      carry = buf.subarray(buf.lastIndexOf(10) + 1);
    }
  }
  return found >= 0 && carry.length ? lineRecord(carry.toString('utf8')) : null;
}

function lineRecord(line: string): string {
  return JSON.stringify((JSON.parse(line) as { record: unknown }).record);
}

/**
 * The export lines of one container of a generation: derived from its rows in the dump (format 2; reads only
 * those bytes of the dump), else read from its export file.
 */
export async function* containerExport(repo: Repository, snapshot: SnapshotInfo, manifest: PgManifest, c: ExportedContainer, host: EntityDataReader): AsyncGenerator<string> {
  if (c.id === undefined || !manifest.rowExport) {
    yield* readEntityExport(repo, snapshot, c.path);
    return;
  }
  if (!host.rowExport) throw new Error(`this host cannot read the exports of generation ${snapshot.id.slice(0, 8)}: they are derived from the dump`);
  const { intSize, columns } = manifest.rowExport;
  const ranges = groupRanges(manifest);
  const tables: Record<string, { columns: string[]; rows: string[][] }> = {};
  for (const [table, cols] of Object.entries(columns)) {
    const range = ranges(table, c.id);
    const rows: string[][] = [];
    if (range) {
      const data = await readFileBytes(repo, snapshot, manifest.dump.path, { start: range[0], end: range[0] + range[1] });
      // pg_dump's framing: a sign byte and an intSize little-endian length before each row.
      for (let at = 0; at < data.length; ) {
        if (at + 1 + intSize > data.length) throw new Error(`the rows of ${c.uid} in ${table} are damaged`);
        let len = 0;
        for (let i = 0; i < intSize; i++) len += data[at + 1 + i] * 2 ** (8 * i);
        at += 1 + intSize;
        if (at + len > data.length || data[at + len - 1] !== 10) throw new Error(`the rows of ${c.uid} in ${table} are damaged`);
        const values = copyFields(data.toString('utf8', at, at + len - 1));
        if (values.length !== cols.length) throw new Error(`a row of ${c.uid} in ${table} has ${values.length} values for ${cols.length} columns`);
        rows.push(values.map((v, i) => jsonValue(v, cols[i].type)));
        at += len;
      }
    }
    tables[table] = { columns: cols.map((x) => x.name), rows };
  }
  yield* host.rowExport.lines(c.type, tables);
}

/**
 * Where a group's rows lie in the dump ([offset, length]; from the lengths in dump order), per manifest. The
 * first lookups add up the lengths up to the group (a restore of one entity reads a few containers: a scan
 * of the lists costs far less than indexing the 100,000 groups of a large installation); past a few dozen
 * (a whole part exported), each table's groups are indexed once.
 */
const rangesOf = new WeakMap<PgManifest, (table: string, group: string) => [number, number] | undefined>();
const SCANS_BEFORE_INDEX = 32;
function groupRanges(manifest: PgManifest): (table: string, group: string) => [number, number] | undefined {
  let lookup = rangesOf.get(manifest);
  if (!lookup) {
    const tables = manifest.rowExport?.tables ?? {};
    const indexed = new Map<string, Map<string, [number, number]>>();
    let scans = 0;
    lookup = (table, group) => {
      const t = tables[table];
      if (!t) return undefined;
      let index = indexed.get(table);
      if (!index && ++scans > SCANS_BEFORE_INDEX) {
        index = new Map();
        let at = t.start;
        for (const [g, len] of t.groups) {
          index.set(g, [at, len]);
          at += len;
        }
        indexed.set(table, index);
      }
      if (index) return index.get(group);
      let at = t.start;
      for (const [g, len] of t.groups) {
        if (g === group) return [at, len];
        at += len;
      }
      return undefined;
    };
    rangesOf.set(manifest, lookup);
  }
  return lookup;
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

