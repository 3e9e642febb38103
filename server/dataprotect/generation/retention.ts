// Retention of generations, in real days (BlueMind counts generations and calls them days). Decided per
// generation, never per part: a generation is kept or deleted whole. Then a prune reclaims the space.

import { prune, type PruneSummary, type Repository } from '../../engine/index.js';
import { deleteGeneration, readGenerations, type GenerationRecord } from './format.js';

export interface RetentionPolicy {
  /** Keep the generations of the last N calendar days, today included (the newest of each day). */
  days: number;
  /** Also the newest generation of each of the last N ISO weeks that have one. */
  weekly?: number;
  /** Also the newest generation of each of the last N months that have one. */
  monthly?: number;
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
 * Which generations to keep (pure). Rules, each adding reasons:
 * - daily: every day from today back to N-1 days ago keeps its newest generation, and its newest VALID one when
 *   the newest is not (a failed "Backup now" in the evening does not push out that night's valid generation);
 * - weekly / monthly: the newest generation of each of the last N weeks / months that have one;
 * - the newest VALID generation is always kept, however old;
 * - `pinned` ids (the run in progress) are always kept.
 */
export function decideRetention(gens: readonly GenerationRecord[], policy: RetentionPolicy, now: Date, pinned: readonly string[] = []): RetentionDecision {
  if (!Number.isInteger(policy.days) || policy.days < 1) throw new Error(`retention days must be a whole number >= 1, got ${policy.days}`);
  const newestFirst = [...gens].sort((a, b) => (a.protectionTime < b.protectionTime ? 1 : a.protectionTime > b.protectionTime ? -1 : 0));
  const reasons = new Map<string, string[]>();
  const add = (id: string, why: string) => reasons.set(id, [...(reasons.get(id) ?? []), why]);

  const first = dayOf(new Date(now.getFullYear(), now.getMonth(), now.getDate() - (policy.days - 1)));
  const today = dayOf(now);
  const seenDay = new Set<string>();
  const seenValidDay = new Set<string>();
  for (const g of newestFirst) {
    const d = dayOf(new Date(g.protectionTime));
    if (d < first || d > today) continue;
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
    let left = n;
    let last: string | undefined;
    for (const g of newestFirst) {
      if (left <= 0) break;
      const b = bucket(new Date(g.protectionTime));
      if (b === last) continue;
      last = b;
      left--;
      add(g.id, `${label} ${b}`);
    }
  }
  const newestValid = newestFirst.find((g) => g.status === 'VALID');
  if (newestValid) add(newestValid.id, 'newest valid generation');
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
  o.log?.info(`retention (${policy.days} days${policy.weekly ? `, ${policy.weekly} weekly` : ''}${policy.monthly ? `, ${policy.monthly} monthly` : ''}): kept ${decision.keep.length}, deleted ${decision.remove.length}`);
  let summary: PruneSummary | null = null;
  let pruneError: string | null = null;
  if (!o.dryRun && !o.noPrune && decision.remove.length > 0) {
    try {
      summary = await prune(repo, { progress: { notice: (m) => o.log?.info(`prune: ${m}`) } });
      o.log?.info(`prune: ${summary.packsDeleted} packs deleted, ${summary.packsRepacked} repacked, ${summary.bytesFreed} bytes freed`);
    } catch (err) {
      pruneError = (err as Error).message;
      o.log?.warn(`prune failed (the next one reclaims the space): ${pruneError}`);
    }
  }
  return { ...decision, prune: summary, pruneError };
}
