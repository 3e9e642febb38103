// A global restore: every part of one generation back into the installation, in dependency order (databases,
// configuration, file hosting, archive, mail), each part from scratch into a clean target, its completion
// recorded in the resumable state. Killed at any point and run again with the same generation, it skips the
// finished parts and redoes the unfinished one; it never mixes two generations, and it refuses an installation
// that holds data unless told to wipe it.

import type { Repository } from '../../engine/index.js';
import type { InstallationPort } from '../../host/installation.js';
import { restoreDatabase } from '../../sources/pgsql-restore.js';
import { findGeneration, type StoredGeneration } from '../generation/format.js';
import type { RunLog } from '../generation/run.js';
import type { PartAgents } from '../generation/part-agents.js';
import { checkGlobalRestore, type Prerequisite } from './check.js';
import { assertReadableFormat } from './compatibility.js';
import { addressChanges, planRestore, uidChanges, type PlannedPart } from './plan.js';
import { lockInstallation } from './lock.js';
import { readState, writeState, type GlobalRestoreState } from './state.js';
import { clearDatabase } from './targets.js';
import { clearLocations, restoreTreePart, type PartDone, type Report } from './tree-part.js';

export interface GlobalRestoreProgress {
  /** The part being restored (`server tag`). */
  part: string;
  partsDone: number;
  partsTotal: number;
  /** Of the current part. */
  bytes: number;
  bytesTotal: number;
  files: number;
  filesTotal: number;
  /** Of the whole restore, from the bytes still to write at the rate so far; null until known. */
  etaSeconds: number | null;
}

export interface PartOutcome {
  key: string;
  server: string;
  tag: string;
  /** The server of this installation it went to. */
  target: string;
  state: 'restored' | 'already restored';
  bytes: number;
  files: number;
  durationMs: number;
  detail: string;
}

export interface GlobalRestoreResult {
  generation: string;
  resumed: boolean;
  /** An earlier run of this generation had finished (killed as it ended, say): nothing was done. */
  alreadyRestored: boolean;
  parts: PartOutcome[];
  addressChanges: { from: string; to: string }[];
  /** Servers restored onto a server of another uid. */
  serverChanges: { from: string; to: string }[];
  warnings: string[];
  durationMs: number;
}

export interface GlobalRestoreRunOptions {
  repo: Repository;
  installation: InstallationPort;
  /** A generation id or `latest`. */
  generation: string;
  servers?: ReadonlyMap<string, string>;
  /** Remove the installation's data first (databases dropped, data directories emptied). */
  wipe?: boolean;
  log?: RunLog;
  progress?: (p: GlobalRestoreProgress) => void;
  /** A part begins or ends (the CLI prints them; tests stop the process there). */
  onPart?: (key: string, state: 'starting' | 'done' | 'skipped') => void;
  signal?: AbortSignal;
  /**
   * The node agents of a multi-server installation: a file part goes to the agent of its target server, which
   * restores it on that server's disks (and has its mail server re-read the spool). Others are restored here.
   */
  agents?: PartAgents;
  /** The repository's location as the agents reach it (default: the repository's own location). */
  repositoryLocation?: string;
}

/** The installation or the generation does not allow the restore; each line says why and what to do. */
export class GlobalRestoreRefusedError extends Error {
  constructor(readonly prerequisites: Prerequisite[]) {
    super(
      'global restore refused: ' +
        prerequisites.filter((p) => p.status === 'not-met').map((p) => `${p.message}${p.advice ? ` (${p.advice})` : ''}`).join('; '),
    );
  }
}

const silent: RunLog = { info: () => {}, warn: () => {}, error: () => {} };

export async function runGlobalRestore(o: GlobalRestoreRunOptions): Promise<GlobalRestoreResult> {
  const g = await findGeneration(o.repo, o.generation);
  assertReadableFormat(g.record);
  const lock = await lockInstallation(o.installation, g.record.id);
  try {
    return await restoreLocked(o, g);
  } finally {
    await lock.release();
  }
}

async function restoreLocked(o: GlobalRestoreRunOptions, g: StoredGeneration): Promise<GlobalRestoreResult> {
  const started = Date.now();
  const log = o.log ?? silent;
  const inst = o.installation;
  const id = g.record.id;
  const explicit = o.servers ?? new Map<string, string>();

  let state = await readState(inst.stateDir);
  const resumed = Boolean(state && state.generation === id && !state.finishedAt && !o.wipe);
  const check = await checkGlobalRestore({ repo: o.repo, installation: inst, generation: id, servers: explicit, wipe: o.wipe });
  const warnings = check.prerequisites.filter((p) => p.status === 'warning').map((p) => p.message);
  if (!check.ok) throw new GlobalRestoreRefusedError(check.prerequisites);
  for (const w of warnings) log.warn(w);

  const plan = await planRestore(g, inst.host, explicit);
  const agentOf = (p: PlannedPart) => {
    const a = p.kind === 'tree' ? (o.agents?.(p.target) ?? null) : null;
    return a?.restoreTree ? a : null;
  };
  const changes = addressChanges(plan.mapping);
  const renames = uidChanges(plan.mapping);
  if (check.alreadyRestored) {
    log.info(`generation ${id} was already restored completely here (finished ${state!.finishedAt}): nothing to do`);
    const parts = plan.parts.map((p): PartOutcome => ({ key: p.key, server: p.part.server, tag: p.part.tag, target: p.target.uid, state: 'already restored', bytes: 0, files: 0, durationMs: 0, detail: '' }));
    return { generation: id, resumed: false, alreadyRestored: true, parts, addressChanges: changes, serverChanges: renames, warnings, durationMs: Date.now() - started };
  }
  if (resumed) {
    log.info(`resuming the restore of generation ${id}: ${state!.done.length} of ${plan.parts.length} parts already restored`);
  } else {
    // Recorded before the wipe: a run killed while wiping is then resumed (every part redone from scratch), not
    // mistaken for the finished restore the wipe was undoing.
    state = {
      kind: 'bm-dataprotect/global-restore', generation: id, repository: o.repo.location, startedAt: new Date().toISOString(),
      servers: Object.fromEntries(plan.mapping.map((m) => [m.from.uid, m.to.uid])), done: [], finishedAt: null,
    };
    await writeState(inst.stateDir, state);
    if (o.wipe) {
      log.warn(`wiping the installation before restoring generation ${id}`);
      // A file part an agent restores is cleared by that agent, on its server.
      for (const p of plan.parts) await clearPart(p, agentOf(p));
    }
    log.info(`restoring generation ${id} of ${g.record.protectionTime}: ${plan.parts.map((p) => p.key).join(', ')}`);
  }
  const st: GlobalRestoreState = state!;

  // Progress: bytes of every part still to restore, the rate measured on what this run wrote.
  const totalBytes = plan.parts.filter((p) => !st.done.includes(p.key)).reduce((n, p) => n + p.snapshot.summary.bytesTotal, 0);
  let bytesBefore = 0;
  const runStarted = Date.now();
  const outcomes: PartOutcome[] = [];
  for (const [i, p] of plan.parts.entries()) {
    const base = { key: p.key, server: p.part.server, tag: p.part.tag, target: p.target.uid };
    if (st.done.includes(p.key)) {
      log.info(`part ${p.key}: already restored by the interrupted run`);
      o.onPart?.(p.key, 'skipped');
      outcomes.push({ ...base, state: 'already restored', bytes: 0, files: 0, durationMs: 0, detail: '' });
      continue;
    }
    if (o.signal?.aborted) throw new Error(`cancelled before part ${p.key}; run again to resume`);
    o.onPart?.(p.key, 'starting');
    log.info(`part ${p.key} → ${p.target.uid}: starting`);
    const partStarted = Date.now();
    const report = (bytes: number, bytesTotal: number, files: number, filesTotal: number) => {
      const done = bytesBefore + bytes;
      const elapsed = (Date.now() - runStarted) / 1000;
      const eta = done > 0 && elapsed > 0.5 ? Math.max(0, Math.round(((totalBytes - done) * elapsed) / done)) : null;
      o.progress?.({ part: p.key, partsDone: i, partsTotal: plan.parts.length, bytes, bytesTotal, files, filesTotal, etaSeconds: eta });
    };
    // From scratch: whatever an interrupted attempt left goes first.
    const agent = agentOf(p);
    await clearPart(p, agent);
    let r: PartDone;
    if (p.kind === 'database') r = await restoreDatabasePart(o.repo, inst, p, renames, report, log);
    else if (agent) {
      log.info(`part ${p.key}: restored by the agent at ${agent.endpoint}`);
      r = await agent.restoreTree!(
        {
          repository: o.repositoryLocation ?? o.repo.location, generation: id, key: p.key, tag: p.part.tag, server: p.target.uid, snapshot: p.snapshot.id,
          locations: p.locations.map((l) => ({ virtualPath: l.virtualPath, fsPath: l.fsPath })), changes,
        },
        { progress: report, log, signal: o.signal },
      );
      r = { ...r, detail: `${r.detail}; by the agent at ${agent.endpoint}` };
    } else {
      r = await restoreTreePart(o.repo, inst, { key: p.key, tag: p.part.tag, target: p.target.uid, snapshot: p.snapshot, locations: p.locations }, changes, report, log);
    }
    st.done.push(p.key);
    await writeState(inst.stateDir, st);
    bytesBefore += p.snapshot.summary.bytesTotal;
    const outcome: PartOutcome = { ...base, state: 'restored', bytes: r.bytes, files: r.files, durationMs: Date.now() - partStarted, detail: r.detail };
    outcomes.push(outcome);
    log.info(`part ${p.key}: restored (${r.detail})`);
    o.onPart?.(p.key, 'done');
  }
  st.finishedAt = new Date().toISOString();
  await writeState(inst.stateDir, st);
  log.info(`generation ${id} restored in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { generation: id, resumed, alreadyRestored: false, parts: outcomes, addressChanges: changes, serverChanges: renames, warnings, durationMs: Date.now() - started };
}

async function clearPart(p: PlannedPart, agent: unknown): Promise<void> {
  if (p.database) await clearDatabase(p.database.connection);
  if (!agent) await clearLocations(p.locations);
}


async function restoreDatabasePart(repo: Repository, inst: InstallationPort, p: PlannedPart, renames: { from: string; to: string }[], report: Report, log: RunLog): Promise<PartDone> {
  const target = p.database!.connection;
  const r = await restoreDatabase({
    repo, snapshot: p.snapshot, target,
    progress: { notice: (m) => log.info(`part ${p.key}: ${m}`), bytes: (done, total) => report(done, total, 0, 0) },
  });
  const notes: string[] = [];
  // Checked against the backup first, then told where its servers are now: the part is done only after both.
  for (const c of renames) {
    const changed = await inst.serverRenamed(target, c.from, c.to);
    if (changed.length) notes.push(`server ${c.from} → ${c.to} in ${changed.join(', ')}`);
  }
  for (const n of notes) log.info(`part ${p.key}: ${n}`);
  return { bytes: r.bytes, files: 0, detail: [`database ${r.database}: ${r.tables} tables, ${r.rows} rows, each checked against the backup`, ...notes].join('; ') };
}
