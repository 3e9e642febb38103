import { availableParallelism } from 'node:os';
import { writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CASES, type BenchSettings } from './cases.js';
import { columnsOf, renderTable, tally, type BenchRow } from './table.js';
import { ensureTools } from './tools.js';

/**
 * `npm run bench`: every case (`--only mail,scale,...` for some), then one table with every figure, ours beside
 * each peer measured in the same run, the ratio, the target and whether it is met. Figures in var/bench/results.json.
 */
const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '40' },
    messages: { type: 'string', default: '300' },
    days: { type: 'string', default: '5' },
    work: { type: 'string', default: 'var/bench' },
    only: { type: 'string' },
    peers: { type: 'string' },
    // The service-latency case: the reference host it backs up through the plugin's server.
    'host-users': { type: 'string', default: '200' },
    'host-messages': { type: 'string', default: '10' },
    // Single-entity restores: the small and the large installation.
    'entity-users': { type: 'string', default: '200,2000' },
    'scale-files': { type: 'string', default: '200000' },
    'index-blobs': { type: 'string', default: '10000000' },
  },
});
const log = (s: string) => process.stderr.write(s + '\n');

function count(name: string, value: string | undefined): number {
  const x = Number(value);
  if (!Number.isInteger(x) || x < 1) throw new Error(`--${name} takes a positive whole number, not '${value}'`);
  return x;
}

function settings(work: string): BenchSettings {
  const entity = (values['entity-users'] ?? '').split(',').map((v) => count('entity-users', v));
  if (entity.length !== 2) throw new Error(`--entity-users takes two sizes, small and large (e.g. 200,2000), not '${values['entity-users']}'`);
  return {
    work,
    users: count('users', values.users),
    messages: count('messages', values.messages),
    days: count('days', values.days),
    peers: values.peers?.split(','),
    hostUsers: count('host-users', values['host-users']),
    hostMessages: count('host-messages', values['host-messages']),
    entityUsers: [entity[0], entity[1]],
    scaleFiles: count('scale-files', values['scale-files']),
    indexBlobs: count('index-blobs', values['index-blobs']),
    log,
  };
}

async function main(): Promise<void> {
  const work = resolve(values.work!);
  const s = settings(work);
  const only = values.only?.split(',').map((x) => x.trim());
  const unknown = only?.filter((x) => !CASES.some((c) => c.name === x)) ?? [];
  if (unknown.length) throw new Error(`--only: no case ${unknown.join(', ')} (cases: ${CASES.map((c) => c.name).join(', ')})`);
  ensureTools(log);
  await mkdir(work, { recursive: true });
  const report: Record<string, unknown> = { machine: { cores: availableParallelism(), node: process.version }, started: new Date().toISOString() };
  const headings: string[] = [];
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const failed: string[] = [];
  const durations: Record<string, number> = {};
  for (const c of CASES.filter((x) => !only || only.includes(x.name))) {
    const t = Date.now();
    try {
      const r = await c.run(s);
      headings.push(r.heading);
      rows.push(...r.rows);
      notes.push(...(r.notes ?? []));
      report[c.name] = r.figures;
      durations[c.name] = Math.round((Date.now() - t) / 1000);
      log(`${c.name}: done in ${durations[c.name]} s`);
    } catch (err) {
      // One case failing leaves the others' figures standing; the run still fails.
      const message = err instanceof Error ? err.message : String(err);
      failed.push(`${c.name}: ${message}`);
      report[c.name] = { failed: message };
      log(`${c.name}: FAILED after ${((Date.now() - t) / 1000).toFixed(0)} s: ${message}`);
    }
  }
  report.rows = rows;
  report.secondsPerCase = durations;
  await writeFile(join(work, 'results.json'), JSON.stringify(report, null, 2));
  const { met, checked } = tally(rows);
  const printed = [
    `Benchmark, ${availableParallelism()} cores, Node ${process.version}; ratios to the peers measured in the same run:`,
    ...headings.map((h) => `  - ${h}`),
    '',
    renderTable(rows, columnsOf(rows, ['ours', 'encrypted', 'restic', 'borg', 'rsync', 's3', 'idle', 'ref'])),
    '',
    `targets met: ${met} of ${checked}`,
    ...notes,
    ...failed.map((f) => `case failed: ${f}`),
  ].join('\n');
  // The table again in a file, as printed, to quote.
  await writeFile(join(work, 'table.md'), printed + '\n');
  console.log(`\n${printed}`);
  console.log(`\nfigures saved in ${join(work, 'results.json')}, the table in ${join(work, 'table.md')}`);
  if (failed.length) process.exitCode = 1;
}

main().catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
