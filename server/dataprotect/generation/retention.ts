// Retention of generations, in real days (BlueMind counts generations and calls them days). Decided per
// generation, never per part: a generation is kept or deleted whole. Then a prune reclaims the space.
//
// What is kept, newest first:
// - every generation of the last 48 hours (even with a one-day window), so a "Backup now" taken before a
//   risky change outlives the next run;
// - within the retention window (the last N calendar days, today included), older ones thinned to one a day:
//   the newest of each day, and that day's newest VALID one when the newest is not;
// - one generation of each of the last W weeks / M months that have one (the period's newest valid one, else
//   its newest): what stays beyond the window;
// - always the newest VALID generation, however old, and every protected generation.
//
// Mail recovery points (light generations of the mail parts, between the nightly ones) are outside that policy:
// they neither count as a day's generation nor as the newest valid one. Each is kept for the recovery-point
// window (N days from its time), then deleted; a protected one is kept.

import { prune, type PruneSummary, type Repository } from '../../engine/index.js';
import { InvalidInputError } from '../errors.js';
import { deleteGeneration, isRecoveryPoint, readGenerations, type GenerationRecord } from './format.js';

export interface RetentionPolicy {
  /** The retention window: the last N calendar days, today included. */
  days: number;
  /** Also one generation of each of the last N ISO weeks that have one. */
  weekly?: number;
  /** Also one generation of each of the last N months that have one. */
  monthly?: number;
  /** Mail recovery points are kept this many days (24-hour periods) from their time; default 2. */
  recoveryPointDays?: number;
}

/** Bounds of a policy (the settings' contract says the same). */
export const RETENTION_LIMITS = {
  days: { min: 1, max: 3650 }, weekly: { min: 0, max: 520 }, monthly: { min: 0, max: 240 }, recoveryPointDays: { min: 1, max: 30 },
} as const;

export const DEFAULT_RECOVERY_POINT_DAYS = 2;

/** Generations younger than this are all kept, whatever the policy says of their day. */
export const KEEP_ALL_WITHIN_MS = 48 * 3600_000;

/** A policy that cannot be applied. `field` is the settings' name (retentionDays, keepWeekly, keepMonthly). */
export class RetentionPolicyError extends InvalidInputError {
  constructor(
    field: string,
    /** What is wrong, without the field's name (the CLI names its option instead). */
    readonly reason: string,
  ) {
    super(field, reason);
  }
}

const FIELDS = { days: 'retentionDays', weekly: 'keepWeekly', monthly: 'keepMonthly', recoveryPointDays: 'recoveryPointRetentionDays' } as const;

/** Throws RetentionPolicyError when the policy is not whole numbers within RETENTION_LIMITS. */
export function checkRetentionPolicy(policy: RetentionPolicy): void {
  for (const key of ['days', 'weekly', 'monthly', 'recoveryPointDays'] as const) {
    const v = policy[key];
    if (v === undefined && key !== 'days') continue;
    const { min, max } = RETENTION_LIMITS[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      const what = key === 'weekly' ? 'weeks' : key === 'monthly' ? 'months' : 'days';
      throw new RetentionPolicyError(FIELDS[key], `must be a whole number of ${what} from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
  }
}

/** The policy in words, for logs and summaries. */
export function describeRetention(policy: RetentionPolicy): string {
  return [
    `${policy.days} days`, ...(policy.weekly ? [`${policy.weekly} weekly`] : []), ...(policy.monthly ? [`${policy.monthly} monthly`] : []),
    `recovery points ${policy.recoveryPointDays ?? DEFAULT_RECOVERY_POINT_DAYS} days`,
  ].join(', ');
}

export interface RetentionDecision {
  keep: { id: string; protectionTime: string; reasons: string[] }[];
  remove: { id: string; protectionTime: string }[];
}

export interface RetentionResult extends RetentionDecision {
  prune: PruneSummary | null;
  pruneError: string | null;
}

const pad = (n: number) => String(n).padStart(2, '0');
/** Local calendar day (the server's time zone, as the schedule). */
export const dayOf = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const monthOf = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;
function weekOf(d: Date): string {
  const t = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  t.setDate(t.getDate() - ((t.getDay() + 6) % 7) + 3); // the Thursday of this ISO week
  const jan4 = new Date(t.getFullYear(), 0, 4);
  jan4.setDate(jan4.getDate() - ((jan4.getDay() + 6) % 7) + 3);
  return `${t.getFullYear()}-W${pad(1 + Math.round((t.getTime() - jan4.getTime()) / (7 * 86400000)))}`;
}

/**
 * Which generations to keep (pure), each kept one with its reasons (see the rules at the top of this file).
 * `pinned` ids (the run in progress) are always kept. Throws RetentionPolicyError on an invalid policy.
 */
export function decideRetention(gens: readonly GenerationRecord[], policy: RetentionPolicy, now: Date, pinned: readonly string[] = []): RetentionDecision {
  checkRetentionPolicy(policy);
  const points = gens.filter(isRecoveryPoint);
  const nightly = decideNightly(gens.filter((g) => !isRecoveryPoint(g)), policy, now, pinned);
  const pointsDecision = decideRecoveryPoints(points, policy.recoveryPointDays ?? DEFAULT_RECOVERY_POINT_DAYS, now, pinned);
  const newest = (a: { protectionTime: string }, b: { protectionTime: string }) => (a.protectionTime < b.protectionTime ? 1 : a.protectionTime > b.protectionTime ? -1 : 0);
  return { keep: [...nightly.keep, ...pointsDecision.keep].sort(newest), remove: [...nightly.remove, ...pointsDecision.remove].sort(newest) };
}

/** Recovery points younger than `days` × 24 hours (or protected, or pinned) are kept; the older ones go. */
export function decideRecoveryPoints(points: readonly GenerationRecord[], days: number, now: Date, pinned: readonly string[] = []): RetentionDecision {
  const since = now.getTime() - days * 86_400_000;
  const decision: RetentionDecision = { keep: [], remove: [] };
  for (const g of [...points].sort((a, b) => (a.protectionTime < b.protectionTime ? 1 : -1))) {
    const why = [
      ...(Date.parse(g.protectionTime) > since ? [`recovery point of the last ${days} days`] : []),
      ...(g.protected ? ['protected'] : []),
      ...(pinned.includes(g.id) ? ['this run'] : []),
    ];
    if (why.length) decision.keep.push({ id: g.id, protectionTime: g.protectionTime, reasons: why });
    else decision.remove.push({ id: g.id, protectionTime: g.protectionTime });
  }
  return decision;
}

/** The nightly policy over the generations that are not recovery points. */
function decideNightly(gens: readonly GenerationRecord[], policy: RetentionPolicy, now: Date, pinned: readonly string[]): RetentionDecision {
  const newestFirst = [...gens].sort((a, b) => (a.protectionTime < b.protectionTime ? 1 : a.protectionTime > b.protectionTime ? -1 : 0));
  const reasons = new Map<string, string[]>();
  const add = (id: string, why: string) => reasons.set(id, [...(reasons.get(id) ?? []), why]);

  const first = dayOf(new Date(now.getFullYear(), now.getMonth(), now.getDate() - (policy.days - 1)));
  const recentSince = now.getTime() - KEEP_ALL_WITHIN_MS;
  const seenDay = new Set<string>();
  const seenValidDay = new Set<string>();
  for (const g of newestFirst) {
    const t = new Date(g.protectionTime);
    const d = dayOf(t);
    // Even with a one-day window; and later than now (a node whose clock is ahead) counts as recent.
    if (t.getTime() > recentSince) add(g.id, 'within the last 48 hours');
    if (d < first) continue;
    if (!seenDay.has(d)) {
      seenDay.add(d);
      add(g.id, `daily ${d}`);
    }
    if (g.status === 'VALID' && !seenValidDay.has(d)) {
      seenValidDay.add(d);
      if (!reasons.get(g.id)?.includes(`daily ${d}`)) add(g.id, `daily ${d} (newest valid)`);
    }
  }
  for (const [n, label, bucket] of [
    [policy.weekly ?? 0, 'weekly', weekOf],
    [policy.monthly ?? 0, 'monthly', monthOf],
  ] as const) {
    // The periods that have a generation, newest first; each keeps its newest valid one, else its newest.
    const periods = new Map<string, GenerationRecord[]>();
    for (const g of newestFirst) {
      const b = bucket(new Date(g.protectionTime));
      periods.set(b, [...(periods.get(b) ?? []), g]);
    }
    for (const [b, inPeriod] of [...periods].slice(0, n)) add((inPeriod.find((g) => g.status === 'VALID') ?? inPeriod[0]).id, `${label} ${b}`);
  }
  const newestValid = newestFirst.find((g) => g.status === 'VALID');
  if (newestValid) add(newestValid.id, 'newest valid generation');
  for (const g of newestFirst) if (g.protected) add(g.id, 'protected');
  for (const id of pinned) if (newestFirst.some((g) => g.id === id)) add(id, 'this run');
  return {
    keep: newestFirst.filter((g) => reasons.has(g.id)).map((g) => ({ id: g.id, protectionTime: g.protectionTime, reasons: reasons.get(g.id)! })),
    remove: newestFirst.filter((g) => !reasons.has(g.id)).map((g) => ({ id: g.id, protectionTime: g.protectionTime })),
  };
}

export interface RetentionRunOptions {
  now?: Date;
  /** Never deleted (the generation the run just made). */
  keep?: readonly string[];
  log?: { info(m: string): void; warn(m: string): void };
  dryRun?: boolean;
  /** Skip the prune (tests of the decision alone). */
  noPrune?: boolean;
}

/**
 * Deletes the generations the policy does not keep (each whole: records, then parts), then prunes. Safe to
 * interrupt: a half-deleted generation reads as interrupted and the next run finishes deleting it; prune is
 * itself safe to interrupt. Only finished generations are considered.
 */
export async function applyRetention(repo: Repository, policy: RetentionPolicy, o: RetentionRunOptions = {}): Promise<RetentionResult> {
  const gens = (await readGenerations(repo)).filter((g) => !g.interrupted);
  const decision = decideRetention(gens.map((g) => g.record), policy, o.now ?? new Date(), o.keep);
  const byId = new Map(gens.map((g) => [g.record.id, g]));
  for (const r of decision.remove) {
    if (o.dryRun) continue;
    await deleteGeneration(repo, byId.get(r.id)!);
    o.log?.info(`retention: deleted generation ${r.id} of ${r.protectionTime}`);
  }
  o.log?.info(`retention (${describeRetention(policy)}): kept ${decision.keep.length}, deleted ${decision.remove.length}`);
  let summary: PruneSummary | null = null;
  let pruneError: string | null = null;
  // Packs an earlier prune marked are deleted by a later one: a run that removed nothing still prunes for them.
  if (!o.dryRun && !o.noPrune && (decision.remove.length > 0 || repo.pruneMarks.size > 0)) {
    try {
      summary = await prune(repo, { progress: { notice: (m) => o.log?.info(`prune: ${m}`) } });
      o.log?.info(`prune: ${summary.packsDeleted} packs deleted, ${summary.packsRepacked} repacked, ${summary.bytesFreed} bytes freed, ${summary.packsPending} packs marked for a later prune`);
    } catch (err) {
      pruneError = (err as Error).message;
      o.log?.warn(`prune failed (the next one reclaims the space): ${pruneError}`);
    }
  }
  return { ...decision, prune: summary, pruneError };
}
