// One backup run: every part of every server into the repository, then the generation's record; a failing part
// is INVALID with its reason and the run goes on. Retention, prune and the post-backup action follow
// (see runGeneration's steps). No HTTP, no task registry: the plugin's runner and the CLI both call this.

import { cpus } from 'node:os';
import { PROGRAM, type Repository } from '../../engine/index.js';
import type { HostPort, HostServer, Tag } from '../../host/port.js';
import type { GenerationStatus, RunStatus } from '../model.js';
import {
  DP_FORMAT_VERSION, deleteGeneration, generationStatus, newGenerationId, readGenerations, refreshLatest, writeLatest, writeRecord,
  type GenerationRecord, type PartRecord, type Trigger,
} from './format.js';
import { runPostBackupScript, type HookResult } from './hook.js';
import { backupPart, failedPart, type PartPlan } from './part-backup.js';
import type { PartAgents } from './part-agents.js';
import { applyRetention, checkRetentionPolicy, type RetentionPolicy, type RetentionResult } from './retention.js';

/** The part order of a run: database first, then configuration and files, mail last (in parallel per server). */
export const TAG_ORDER: readonly Tag[] = ['bm/pgsql', 'bm/pgsql-data', 'bm/core', 'bm/conf', 'filehosting/data', 'mail/imap', 'mail/archive'];
/** The mail parts: the only parts of a recovery point. */
export const MAIL_TAGS: ReadonlySet<string> = new Set<string>(['mail/imap', 'mail/archive']);

export type { PartPlan } from './part-backup.js';

export interface RunOptions {
  backupEmails: boolean;
  backupArchivedEmails: boolean;
  skippedTags: readonly string[];
  /** A mail recovery point: the mail parts alone (mail/imap, and mail/archive when archived mail is backed up). */
  recoveryPoint?: boolean;
}

export interface RunLog {
  info(m: string): void;
  warn(m: string): void;
  error(m: string): void;
}

export interface RunProgress {
  partsDone: number;
  partsTotal: number;
  bytes: number;
  current: string | null;
}

export interface GenerationRunOptions extends RunOptions {
  repo: Repository;
  host: HostPort;
  trigger: Trigger;
  productVersion: string;
  /** The generation's time (tests simulate days with it); default now. */
  time?: Date;
  log?: RunLog;
  progress?: (p: RunProgress) => void;
  signal?: AbortSignal;
  /** Applied after a successful run; omit to skip retention (a recovery point never applies it: the nightly does). */
  retention?: RetentionPolicy;
  /** The post-backup action; omit to skip it. */
  postBackup?: { script: string; timeoutMs?: number };
  /** How many mail parts of different servers run at once (default: cores, at most 4). */
  mailConcurrency?: number;
  /** Called when the first record is written (tests kill the process here or later). */
  onStarted?: (generationId: string) => void;
  /**
   * The node agent serving each server (multi-server installations); a server without one is backed up here.
   * With agents of other servers, the servers' parts run in parallel, each server's in order; the coordinator's own
   * backup process (a `local` agent) keeps the order of parts backed up here.
   */
  agents?: PartAgents;
  /** The repository's location as the agents reach it (default: the repository's own location). */
  repositoryLocation?: string;
}

export interface GenerationRunResult {
  generation: GenerationRecord;
  runStatus: RunStatus;
  cleaned: string[];
  retention: RetentionResult | null;
  hook: HookResult | null;
}

const silent: RunLog = { info: () => {}, warn: () => {}, error: () => {} };

/** Which parts a run backs up, in order, from the topology and the options. */
export function planParts(servers: readonly HostServer[], o: RunOptions): PartPlan[] {
  const skipped = new Set(o.skippedTags);
  const plan: PartPlan[] = [];
  for (const tag of TAG_ORDER) {
    for (const s of servers) {
      const tags = new Set<string>([...s.tags, 'bm/conf']);
      if (!tags.has(tag) || skipped.has(tag)) continue;
      if (tag === 'mail/imap' && !o.backupEmails) continue;
      if (tag === 'mail/archive' && !o.backupArchivedEmails) continue;
      plan.push({ server: s.uid, tag });
    }
  }
  if (o.recoveryPoint) return plan.filter((p) => MAIL_TAGS.has(p.tag));
  // Tags we do not know go last, in the topology's order.
  for (const s of servers) {
    for (const tag of s.tags) if (!TAG_ORDER.includes(tag) && !skipped.has(tag)) plan.push({ server: s.uid, tag });
  }
  return plan;
}

/**
 * The steps: clean up generations left by interrupted runs; write the running record; back up each part; write
 * the final record and the `latest` reference; then, when the run succeeded (OK or WARNING), retention and prune,
 * and the post-backup action; a result that changes the run status is written as a new revision of the record.
 */
export async function runGeneration(o: GenerationRunOptions): Promise<GenerationRunResult> {
  // A policy that cannot be applied is refused before anything is written, not found wrong after the run.
  if (o.retention) checkRetentionPolicy(o.retention);
  const log = o.log ?? silent;
  const time = o.time ?? new Date();
  const id = newGenerationId(time);
  const servers = await o.host.servers();
  const recoveryPoint = o.trigger === 'recovery-point';
  const plan = planParts(servers, { ...o, recoveryPoint });
  if (recoveryPoint && plan.length === 0) {
    throw new RecoveryPointRefusedError('a recovery point backs up mail, and this installation backs up none: turn on "Backup emails" (or leave mail/imap out of the skipped tags)');
  }
  log.info(`generation ${id}: ${plan.length} parts (${plan.map((p) => `${p.server} ${p.tag}`).join(', ')})`);

  const cleaned = await cleanInterrupted(o.repo, log);

  const record: GenerationRecord = {
    kind: 'bm-dataprotect/generation', formatVersion: DP_FORMAT_VERSION, id, protectionTime: time.toISOString(), end: null,
    state: 'running', status: 'INVALID', runStatus: null, trigger: o.trigger, productVersion: o.productVersion,
    program: PROGRAM, repositoryFormat: o.repo.config.version, parts: [], messages: [],
  };
  // Held from before the running record until the parts are done, so that another process's clean-up (which
  // needs an exclusive lock) never takes this run for a dead one.
  const runLock = await o.repo.lock(false, `generation ${id}`, (m) => log.info(m));
  try {
    await writeRecord(o.repo, record, 0, time);
  } catch (err) {
    await runLock.release();
    throw err;
  }
  o.onStarted?.(id);

  const progress: RunProgress = { partsDone: 0, partsTotal: plan.length, bytes: 0, current: null };
  const running = new Map<string, number>();
  const report = () => {
    progress.current = running.size ? [...running.keys()].join(', ') : null;
    o.progress?.({ ...progress, bytes: progress.bytes + [...running.values()].reduce((a, b) => a + b, 0) });
  };
  const results = new Map<PartPlan, PartRecord>();
  const agentOf = new Map(servers.map((s) => [s.uid, o.agents?.(s) ?? null]));
  const runOne = async (p: PartPlan) => {
    const key = `${p.server} ${p.tag}`;
    if (o.signal?.aborted) {
      results.set(p, failedPart(p, new Date(), 'not backed up: the run was cancelled'));
      return;
    }
    running.set(key, 0);
    report();
    log.info(`part ${key}: starting`);
    const bytes = (n: number) => {
      running.set(key, n);
      report();
    };
    const agent = agentOf.get(p.server) ?? null;
    const part = agent
      ? await agent.backup(
          { generation: id, server: p.server, tag: p.tag, time: time.toISOString(), repository: o.repositoryLocation ?? o.repo.location },
          { bytes, log, signal: o.signal },
        )
      : await backupPart({ repo: o.repo, host: o.host, part: p, generation: id, time, bytes, log, signal: o.signal });
    if (agent && !agent.local) log.info(`part ${key}: backed up by the agent at ${agent.endpoint}`);
    running.delete(key);
    progress.partsDone++;
    progress.bytes += part.sizeRead;
    report();
    results.set(p, part);
    const detail = `read ${part.sizeRead} bytes, added ${part.sizeAdded}`;
    if (part.status === 'VALID') log.info(`part ${key}: VALID (${detail})`);
    else if (part.status === 'UNKNOWN') log.warn(`part ${key}: UNKNOWN (${detail}): ${part.messages.join('; ')}`);
    else log.error(`part ${key}: INVALID: ${part.messages.join('; ')}`);
  };

  try {
  if ([...agentOf.values()].some((a) => a && !a.local)) {
    // Each agent reads its own server's disks: every server's parts at once, each server's in the plan's order.
    const perServer = new Map<string, PartPlan[]>();
    for (const p of plan) perServer.set(p.server, [...(perServer.get(p.server) ?? []), p]);
    await Promise.all([...perServer.values()].map(async (q) => {
      for (const p of q) await runOne(p);
    }));
  } else {
  // Non-mail parts one after the other, then mail parts: one queue per server, servers in parallel.
  for (const p of plan.filter((x) => !MAIL_TAGS.has(x.tag))) await runOne(p);
  const mailQueues = new Map<string, PartPlan[]>();
  for (const p of plan.filter((x) => MAIL_TAGS.has(x.tag))) mailQueues.set(p.server, [...(mailQueues.get(p.server) ?? []), p]);
  const limit = Math.max(1, o.mailConcurrency ?? Math.min(4, cpus().length));
  const queues = [...mailQueues.values()];
  await Promise.all(
    Array.from({ length: Math.min(limit, queues.length) }, async () => {
      for (let q = queues.shift(); q; q = queues.shift()) for (const p of q) await runOne(p);
    }),
  );
  }
  } finally {
    await runLock.release();
  }

  // The address each server had: a global restore maps servers by it (BlueMind's rule: same address).
  record.parts = plan.map((p) => ({ ...results.get(p)!, serverAddress: servers.find((s) => s.uid === p.server)?.address ?? null }));
  record.state = 'final';
  record.end = new Date().toISOString();
  record.status = generationStatus(record.parts);
  let runStatus: RunStatus = runStatusOf(record.status);
  if (o.signal?.aborted) {
    record.messages.push('cancelled');
    runStatus = 'ERROR';
  }
  record.runStatus = runStatus;
  await writeRecord(o.repo, record, 1, time);
  log.info(`generation ${id}: ${record.status}, run ${runStatus}`);
  if (record.status === 'VALID' && !recoveryPoint) await writeLatest(o.repo, record);

  const revise = async (status: RunStatus, message: string) => {
    runStatus = status;
    record.runStatus = status;
    record.messages.push(message);
  };
  let retention: RetentionResult | null = null;
  let hook: HookResult | null = null;
  const succeeded = runStatus === 'OK' || runStatus === 'WARNING';
  if (succeeded && o.retention && !recoveryPoint) {
    try {
      retention = await applyRetention(o.repo, o.retention, { now: time, keep: [id], log });
      if (retention.pruneError) await revise('WARNING', `retention: prune failed: ${retention.pruneError}`);
    } catch (err) {
      log.error(`retention failed: ${(err as Error).message}`);
      await revise('WARNING', `retention failed: ${(err as Error).message}`);
    }
  }
  // The post-backup action follows a full generation (it copies the repository off-site, for instance).
  if (succeeded && o.postBackup && !recoveryPoint) {
    hook = await runPostBackupScript(o.postBackup.script, {
      generation: record, runStatus, repository: o.repo.location, timeoutMs: o.postBackup.timeoutMs, log, signal: o.signal,
    });
    if (hook.ran && !hook.ok) await revise('POSTOPS_ERROR', `post-backup action failed: ${hook.reason}`);
  }
  const revised = record.runStatus !== runStatusOf(record.status) && !o.signal?.aborted;
  if (revised) {
    // A new revision of the final record with the run status the later steps gave; then the older one goes.
    await writeRecord(o.repo, record, 2, time);
    const old = (await o.repo.listSnapshots({ server: '_dataprotect' })).filter((s) => s.meta?.generation === id && s.meta?.state === 'final' && s.meta?.revision === 1);
    const lock = await o.repo.lock(true, `revise generation ${id}`);
    try {
      for (const s of old) await o.repo.deleteSnapshot(s.id);
    } finally {
      await lock.release();
    }
  }
  if (retention || revised) await refreshLatest(o.repo);
  return { generation: record, runStatus, cleaned, retention, hook };
}

/** A recovery point that cannot be taken (nothing to back up): refused before anything is written. */
export class RecoveryPointRefusedError extends Error {}

export function runStatusOf(status: GenerationStatus): RunStatus {
  return status === 'VALID' ? 'OK' : status === 'UNKNOWN' ? 'WARNING' : 'ERROR';
}

/** Deletes the generations of runs that never finished; a backup lock of a live process means one may still run. */
async function cleanInterrupted(repo: Repository, log: RunLog): Promise<string[]> {
  const gens = (await readGenerations(repo)).filter((g) => g.interrupted);
  const out: string[] = [];
  for (const g of gens) {
    try {
      await deleteGeneration(repo, g, (m) => log.info(m));
      log.info(`deleted generation ${g.record.id}, left INVALID by an interrupted run`);
      out.push(g.record.id);
    } catch (err) {
      log.warn(`could not delete interrupted generation ${g.record.id}: ${(err as Error).message}`);
    }
  }
  return out;
}
