/**
 * The bench's one table: every figure, ours beside each peer measured in the same run, our ratio to each, the
 * target and whether it is met. A target is a ratio to a column of the same row (`<= 0.8x borg`), a bound in the
 * row's unit (`<= 50 ms`), or a text alone (informative).
 */

export interface Target {
  /** The column the target is a ratio to (a peer, `idle`, or `ref`: the reference case the row names). */
  peer?: string;
  factor?: number;
  /** A bound in the row's unit; `text` says it. */
  limit?: number;
  text?: string;
}

export interface BenchRow {
  metric: string;
  unit: string;
  /** By column: `ours` first, then the peers. Lower is better for every metric. */
  values: Record<string, number>;
  /** None: informative. Several: each is checked (e.g. `<= 0.8x borg` and `<= 1x restic`). */
  targets?: Target[];
}

/** Ours at most `factor` times `peer` (`ref` reads "the reference case"). */
export const vs = (peer: string, factor: number): Target => ({ peer, factor });
export const atMost = (limit: number, text: string): Target => ({ limit, text });
export const informative: Target = { text: 'informative' };

export function targetText(t: Target): string {
  if (t.text) return t.text;
  return `<= ${t.factor}x ${t.peer}`;
}

/** 'met', 'not met', or '' when there is nothing to check (informative, or a figure missing). */
export function targetMet(row: BenchRow, t: Target): string {
  const ours = row.values.ours;
  if (ours === undefined || Number.isNaN(ours)) return '';
  const bound = t.limit !== undefined ? t.limit : t.peer && t.factor !== undefined && row.values[t.peer] !== undefined ? t.factor * row.values[t.peer] : undefined;
  if (bound === undefined || Number.isNaN(bound)) return '';
  return ours <= bound ? 'met' : 'not met';
}

export function fmt(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  const a = Math.abs(n);
  return a >= 100 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : n.toFixed(2);
}

/** The columns that hold a figure in at least one row, `ours` first, in `order`'s order. */
export function columnsOf(rows: BenchRow[], order: string[]): string[] {
  const used = new Set(rows.flatMap((r) => Object.keys(r.values)));
  const extra = [...used].filter((c) => !order.includes(c)).sort();
  return ['ours', ...[...order, ...extra].filter((c) => c !== 'ours' && used.has(c))];
}

/** A Markdown table, columns padded. */
export function renderTable(rows: BenchRow[], columns: string[]): string {
  const others = columns.filter((c) => c !== 'ours');
  const head = ['metric', 'unit', ...columns, ...others.map((p) => `ours/${p}`), 'target', 'met'];
  const body = rows.map((r) => {
    const ratios = others.map((p) => (r.values.ours !== undefined && r.values[p] ? `${(r.values.ours / r.values[p]).toFixed(2)}x` : '-'));
    const targets = r.targets ?? [];
    return [r.metric, r.unit, ...columns.map((p) => fmt(r.values[p])), ...ratios, targets.map(targetText).join('; '), targets.map((t) => targetMet(r, t)).filter(Boolean).join('; ')];
  });
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  return [line(head), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

/** How many targets are met, out of how many checked. */
export function tally(rows: BenchRow[]): { met: number; checked: number } {
  let met = 0;
  let checked = 0;
  for (const r of rows) {
    for (const t of r.targets ?? []) {
      const m = targetMet(r, t);
      if (m) checked++;
      if (m === 'met') met++;
    }
  }
  return { met, checked };
}
