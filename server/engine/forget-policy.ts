import { EngineError } from './errors.js';
import type { SnapshotInfo } from './snapshot.js';

/** Which snapshots to keep in each (server, tag) group, with restic's semantics. */
export interface ForgetPolicy {
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
}

export interface PolicyDecision {
  keep: { snapshot: SnapshotInfo; reasons: string[] }[];
  remove: SnapshotInfo[];
}

type Bucket = (d: Date) => string;

const pad = (n: number) => String(n).padStart(2, '0');
const RULES: [keyof ForgetPolicy, string, Bucket][] = [
  ['keepLast', 'last', () => ''],
  ['keepDaily', 'daily', (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`],
  ['keepWeekly', 'weekly', isoWeek],
  ['keepMonthly', 'monthly', (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}`],
  ['keepYearly', 'yearly', (d) => String(d.getFullYear())],
];

/**
 * Applies a policy to one group: walking from the newest, a rule with N keeps the newest snapshot of
 * each of the last N distinct periods (days, ISO weeks, months, years; local time) that have one.
 */
export function applyPolicy(snapshots: readonly SnapshotInfo[], policy: ForgetPolicy): PolicyDecision {
  const active = RULES.filter(([k]) => (policy[k] ?? 0) > 0);
  if (active.length === 0) throw new EngineError('refusing to forget every snapshot: give at least one --keep-* rule with a count above 0');
  for (const [k] of RULES) {
    const v = policy[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new EngineError(`${k} must be a whole number >= 0, got ${v}`);
  }
  const newestFirst = [...snapshots].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
  const reasons = new Map<string, string[]>();
  for (const [key, label, bucket] of active) {
    let left = policy[key]!;
    let last: string | undefined;
    for (const s of newestFirst) {
      if (left === 0) break;
      const b = key === 'keepLast' ? s.id : bucket(new Date(s.time));
      if (b === last) continue;
      last = b;
      left--;
      const r = reasons.get(s.id) ?? [];
      r.push(key === 'keepLast' ? 'last' : `${label} ${b}`);
      reasons.set(s.id, r);
    }
  }
  return {
    keep: newestFirst.filter((s) => reasons.has(s.id)).map((s) => ({ snapshot: s, reasons: reasons.get(s.id)! })),
    remove: newestFirst.filter((s) => !reasons.has(s.id)),
  };
}

/** Groups snapshots by (server, tag): retention never mixes parts. */
export function groupSnapshots(snapshots: readonly SnapshotInfo[]): Map<string, SnapshotInfo[]> {
  const groups = new Map<string, SnapshotInfo[]>();
  for (const s of snapshots) {
    const k = `${s.server}\t${s.tag}`;
    const g = groups.get(k);
    if (g) g.push(s);
    else groups.set(k, [s]);
  }
  return groups;
}

function isoWeek(d: Date): string {
  const t = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const day = (t.getDay() + 6) % 7;
  t.setDate(t.getDate() - day + 3);
  const firstThursday = new Date(t.getFullYear(), 0, 4);
  const week = 1 + Math.round(((t.getTime() - firstThursday.getTime()) / 86400000 - 3 + ((firstThursday.getDay() + 6) % 7)) / 7);
  return `${t.getFullYear()}-W${pad(week)}`;
}
