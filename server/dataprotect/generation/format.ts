// How a generation lives in the repository, so that the list of generations can be rebuilt from the repository
// alone (the plugin's tables are only a cache; the global restore reads this directly).
//
// - Each part (server, tag) is one engine snapshot of that (server, tag), whose meta holds
//   `{ generation: <id>, dpFormat: 1 }` (plus what the part's source adds, e.g. the pgsql manifest summary).
// - The generation itself is described by snapshots of the pseudo part (GENERATION_SERVER, GENERATION_TAG):
//   a `running` record written first (before any part) and a `final` record written last, after every part.
//   Their meta is `{ generation, dpFormat, state, revision, record }` and their tree holds `/generation.json`
//   (the same record, for someone reading the repository with the plain `restore` command).
// - A generation without a final record is INVALID ("interrupted"): the next run deletes it. A final record can
//   be superseded by a later revision (the post-backup action changed the run status): readers take the highest.
// - Deleting a generation removes its final records first, then its parts, then its running record, so an
//   interrupted deletion leaves an "interrupted" generation that the next run cleans up.
// - Protection (`protected: true`, kept whatever the retention policy) is a field of the record: protecting or
//   unprotecting writes a new final revision, then deletes the older ones (protection.ts).

import { randomBytes } from 'node:crypto';
import { Archiver, type Repository, type SnapshotInfo } from '../../engine/index.js';
import type { Generation, GenerationStatus, Part, RunStatus, Trigger } from '../model.js';

/** Version of the generation description (records and part meta). Readers accept every version up to this one. */
export const DP_FORMAT_VERSION = 1;
export const GENERATION_SERVER = '_dataprotect';
export const GENERATION_TAG = 'dataprotect/generation';
export const GENERATION_FILE = '/generation.json';
/** The repository reference naming the newest valid generation, for scripts (JSON; beside `config` in a directory). */
export const LATEST_REFERENCE = 'latest';

export type { Trigger };

export interface PartRecord extends Part {
  /** The engine snapshot of this part, null when the part failed before anything was committed. */
  snapshot: string | null;
}

export interface GenerationRecord {
  kind: 'bm-dataprotect/generation';
  formatVersion: number;
  id: string;
  /** When the run began (the generation's date). */
  protectionTime: string;
  end: string | null;
  state: 'running' | 'final';
  status: GenerationStatus;
  runStatus: RunStatus | null;
  trigger: Trigger;
  /** The host's product version (BlueMind's), for the global restore's compatibility check. */
  productVersion: string;
  program: string;
  repositoryFormat: number;
  parts: PartRecord[];
  messages: string[];
  /** Kept whatever the retention policy (absent: not protected). */
  protected?: boolean;
}

/** A generation as read back from the repository. */
export interface StoredGeneration {
  record: GenerationRecord;
  /** The record snapshots (running marker and final revisions). */
  recordSnapshots: SnapshotInfo[];
  /** Every part snapshot whose meta names this generation. */
  partSnapshots: SnapshotInfo[];
  /** No final record: the run was interrupted (or is still running). */
  interrupted: boolean;
}

/** `20261126-014500-3fa2`: sortable by time, readable, unique enough for one repository. */
export function newGenerationId(at: Date): string {
  const iso = at.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${randomBytes(2).toString('hex')}`;
}

export function generationOf(s: SnapshotInfo): string | null {
  const g = s.meta?.generation;
  return typeof g === 'string' ? g : null;
}

function isRecord(s: SnapshotInfo): boolean {
  return s.server === GENERATION_SERVER && s.tag === GENERATION_TAG;
}

/** The status of a generation from its parts: VALID only when it has parts and all are VALID. */
export function generationStatus(parts: readonly Pick<Part, 'status'>[]): GenerationStatus {
  if (parts.length === 0 || parts.some((p) => p.status === 'INVALID')) return 'INVALID';
  return parts.some((p) => p.status === 'UNKNOWN') ? 'UNKNOWN' : 'VALID';
}

/** Every generation of the repository, newest first (read from snapshot files only, no data). */
export async function readGenerations(repo: Repository, snapshots?: SnapshotInfo[]): Promise<StoredGeneration[]> {
  const all = snapshots ?? (await repo.listSnapshots());
  const byGen = new Map<string, { records: SnapshotInfo[]; parts: SnapshotInfo[] }>();
  for (const s of all) {
    const g = generationOf(s);
    if (!g) continue;
    let e = byGen.get(g);
    if (!e) byGen.set(g, (e = { records: [], parts: [] }));
    (isRecord(s) ? e.records : e.parts).push(s);
  }
  const out: StoredGeneration[] = [];
  for (const [id, e] of byGen) {
    const finals = e.records.filter((r) => r.meta?.state === 'final').sort((a, b) => Number(b.meta?.revision ?? 0) - Number(a.meta?.revision ?? 0));
    const chosen = finals[0] ?? e.records.find((r) => r.meta?.state === 'running');
    const stored = chosen?.meta?.record as GenerationRecord | undefined;
    let record: GenerationRecord;
    if (stored && typeof stored === 'object' && stored.id === id) {
      record = { ...stored, parts: stored.parts.map((p) => ({ ...p })), messages: [...stored.messages] };
    } else {
      // Parts without any record (a deletion that stopped half-way): describe what is there.
      record = {
        kind: 'bm-dataprotect/generation', formatVersion: DP_FORMAT_VERSION, id,
        protectionTime: e.parts[0]?.time ?? new Date(0).toISOString(), end: null, state: 'running', status: 'INVALID',
        runStatus: null, trigger: 'api', productVersion: 'unknown', program: e.parts[0]?.program ?? 'unknown',
        repositoryFormat: repo.config.version, parts: [], messages: [],
      };
    }
    const interrupted = finals.length === 0;
    if (interrupted) {
      // What the interrupted run had committed, from the part snapshots themselves.
      const known = new Set(record.parts.map((p) => `${p.server}\t${p.tag}`));
      for (const s of e.parts) {
        if (known.has(`${s.server}\t${s.tag}`)) continue;
        record.parts.push(partFromSnapshot(s, 'INVALID', ['the run stopped before this generation was complete']));
      }
      record.status = 'INVALID';
      record.runStatus = record.runStatus ?? 'ERROR';
      if (!record.messages.some((m) => m.startsWith('interrupted'))) record.messages.push('interrupted: the run did not finish (the next run deletes this generation)');
    }
    // Records written before parts carried their full size: read it from the part's snapshot.
    for (const p of record.parts) {
      if (typeof p.sizeTotal === 'number') continue;
      const snap = p.snapshot ? e.parts.find((x) => x.id === p.snapshot) : undefined;
      p.sizeTotal = snap ? snap.summary.bytesTotal : null;
    }
    out.push({ record, recordSnapshots: e.records, partSnapshots: e.parts, interrupted });
  }
  return out.sort((a, b) => (a.record.protectionTime < b.record.protectionTime ? 1 : a.record.protectionTime > b.record.protectionTime ? -1 : a.record.id < b.record.id ? 1 : -1));
}

function partFromSnapshot(s: SnapshotInfo, status: GenerationStatus, messages: string[]): PartRecord {
  return {
    id: s.id.slice(0, 16), server: s.server, tag: s.tag, status, begin: s.time, end: null,
    sizeRead: s.summary.bytesRead, sizeAdded: s.summary.bytesAdded, sizeTotal: s.summary.bytesTotal, messages, snapshot: s.id,
  };
}

/** When a run ended: its record's end, else its last part's. */
export function runEnd(r: Pick<GenerationRecord, 'end' | 'parts'>): string | null {
  return r.end ?? r.parts.map((p) => p.end).filter((e): e is string => Boolean(e)).sort().at(-1) ?? null;
}

/** The API's shape of a generation. */
export function toGeneration(r: GenerationRecord): Generation {
  return {
    id: r.id,
    protectionTime: r.protectionTime,
    status: r.status,
    runStatus: r.runStatus,
    productVersion: r.productVersion,
    formatVersion: r.formatVersion,
    protected: r.protected === true,
    sizeRead: r.parts.reduce((n, p) => n + p.sizeRead, 0),
    sizeAdded: r.parts.reduce((n, p) => n + p.sizeAdded, 0),
    sizeTotal: r.parts.reduce((n, p) => n + (p.sizeTotal ?? 0), 0),
    trigger: r.trigger,
    end: r.state === 'final' ? runEnd(r) : null,
    durationSeconds: r.state === 'final' && runEnd(r) ? Math.max(0, (Date.parse(runEnd(r)!) - Date.parse(r.protectionTime)) / 1000) : null,
    parts: r.parts.map(({ snapshot: _s, ...p }) => ({ ...p, sizeTotal: p.sizeTotal ?? null, messages: [...p.messages] })),
  };
}

export class GenerationNotFoundError extends Error {}

/**
 * A mail recovery point: a light generation of the mail parts alone, taken between the nightly generations. It
 * restores mail; the nightly generation stays the unit of everything else (latest, global restore, rehearsal).
 */
export function isRecoveryPoint(r: Pick<GenerationRecord, 'trigger'>): boolean {
  return r.trigger === 'recovery-point';
}

/** A generation by id, or `latest` (the newest valid one, never a recovery point). */
export async function findGeneration(repo: Repository, ref: string): Promise<StoredGeneration> {
  const gens = await readGenerations(repo);
  const g = ref === 'latest' ? gens.find((x) => !x.interrupted && x.record.status === 'VALID' && !isRecoveryPoint(x.record)) : gens.find((x) => x.record.id === ref);
  if (!g) throw new GenerationNotFoundError(ref === 'latest' ? `no valid generation in ${repo.location}` : `no generation ${ref} in ${repo.location}`);
  return g;
}

/**
 * The snapshot of part (server, tag) of generation `generationId` (or `latest`): what a single restore reads.
 * Throws GenerationNotFoundError when the generation does not exist or has no committed snapshot for that part.
 */
export async function findPartSnapshot(repo: Repository, generationId: string, server: string, tag: string): Promise<SnapshotInfo> {
  const g = await findGeneration(repo, generationId);
  const fromRecord = g.record.parts.find((p) => p.server === server && p.tag === tag)?.snapshot;
  const snap = g.partSnapshots.find((s) => (fromRecord ? s.id === fromRecord : s.server === server && s.tag === tag));
  if (!snap) throw new GenerationNotFoundError(`generation ${g.record.id} has no snapshot of ${tag} on ${server}`);
  return snap;
}

/** Writes a record snapshot (the generation's running marker or a final revision). */
export async function writeRecord(repo: Repository, record: GenerationRecord, revision: number, time: Date): Promise<SnapshotInfo> {
  const archiver = new Archiver(repo, { server: GENERATION_SERVER, tag: GENERATION_TAG, parent: 'none', time });
  try {
    await archiver.addBytes(GENERATION_FILE, Buffer.from(JSON.stringify(record, null, 1) + '\n'));
    return await archiver.commit({ meta: { generation: record.id, dpFormat: DP_FORMAT_VERSION, state: record.state, revision, record } });
  } catch (err) {
    await archiver.abort();
    throw err;
  }
}

/** Deletes a generation's snapshot files (final records, then parts, then the running marker). Exclusive lock. */
export async function deleteGeneration(repo: Repository, g: StoredGeneration, notice?: (m: string) => void): Promise<number> {
  const lock = await repo.lock(true, `forget generation ${g.record.id}`, notice);
  try {
    const finals = g.recordSnapshots.filter((r) => r.meta?.state === 'final');
    const others = g.recordSnapshots.filter((r) => r.meta?.state !== 'final');
    let n = 0;
    for (const s of [...finals, ...g.partSnapshots, ...others]) {
      await repo.deleteSnapshot(s.id);
      n++;
    }
    return n;
  } finally {
    await lock.release();
  }
}

export interface LatestReference {
  generation: string;
  protectionTime: string;
  status: GenerationStatus;
  runStatus: RunStatus | null;
  parts: { server: string; tag: string; status: GenerationStatus; snapshot: string | null }[];
}

/** The `latest` reference: the newest valid generation, rewritten atomically after each run. */
export async function writeLatest(repo: Repository, g: GenerationRecord | null): Promise<void> {
  const body: LatestReference | { generation: null } = g
    ? {
        generation: g.id, protectionTime: g.protectionTime, status: g.status, runStatus: g.runStatus,
        parts: g.parts.map((p) => ({ server: p.server, tag: p.tag, status: p.status, snapshot: p.snapshot })),
      }
    : { generation: null };
  await repo.writeReference(LATEST_REFERENCE, Buffer.from(JSON.stringify(body, null, 1) + '\n'));
}

/** The generation `latest` names, or null when there is none (or it cannot be read: it is only a pointer). */
export async function readLatest(repo: Repository): Promise<LatestReference | null> {
  try {
    const file = await repo.readReference(LATEST_REFERENCE);
    const v = file && (JSON.parse(file.toString('utf8')) as LatestReference | { generation: null });
    return v?.generation ? (v as LatestReference) : null;
  } catch {
    return null;
  }
}

/** Points `latest` at the newest valid generation still in the repository (recovery points hold mail only: never). */
export async function refreshLatest(repo: Repository): Promise<GenerationRecord | null> {
  const gens = await readGenerations(repo);
  const newest = gens.find((g) => !g.interrupted && g.record.status === 'VALID' && !isRecoveryPoint(g.record))?.record ?? null;
  await writeLatest(repo, newest);
  return newest;
}
