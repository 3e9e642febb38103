import { existsSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runLatencyBench } from './latency.js';
import { runMailBench, type MailBenchRow } from './mail.js';
import { ensureTools } from './tools.js';

/**
 * `npm run bench`: the mail-spool case against restic, borg and rsync --link-dest, then the database
 * case when its module is present, then the global restore against its floor. Prints a table with every figure and our ratio to each peer.
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
  },
});
const log = (s: string) => process.stderr.write(s + '\n');

function table(rows: MailBenchRow[], peers: string[]): string {
  const fmt = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const head = ['metric', 'unit', ...peers, ...peers.slice(1).map((p) => `ours/${p}`), 'target', 'met'];
  const body = rows.map((r) => {
    const ratios = peers.slice(1).map((p) => (r.values.ours && r.values[p] ? `${(r.values.ours / r.values[p]).toFixed(2)}x` : '-'));
    const peer = r.target?.match(/than (\w+)/)?.[1];
    const met =
      r.limit !== undefined ? (r.values.ours <= r.limit ? 'met' : 'not met') : peer && r.values[peer] !== undefined ? (r.values.ours <= r.values[peer] ? 'met' : 'not met') : '';
    return [r.metric, r.unit, ...peers.map((p) => fmt(r.values[p])), ...ratios, r.target ?? '', met];
  });
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  return [line(head), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

/** The `encrypted` line: what encryption costs over the same local repository (target: under 10% on the first backup). */
function encryptionCost(rows: MailBenchRow[]): string | null {
  const pick = (prefix: string) => rows.find((r) => r.metric.startsWith(prefix))?.values;
  const parts: string[] = [];
  for (const [label, prefix] of [['first backup', 'first backup'], ['first backup CPU', 'first backup, CPU'], ['one-mailbox restore', 'restore one mailbox']] as const) {
    const v = pick(prefix);
    if (!v?.ours || !v.encrypted) continue;
    parts.push(`${label} ${v.encrypted.toFixed(2)} s vs ${v.ours.toFixed(2)} s (${v.encrypted >= v.ours ? '+' : ''}${(((v.encrypted - v.ours) / v.ours) * 100).toFixed(1)}%)`);
  }
  return parts.length ? `encrypted (AES-256-GCM, keyed ids) beside local: ${parts.join('; ')}; target under 10% on the first backup` : null;
}

async function main(): Promise<void> {
  ensureTools(log);
  const work = resolve(values.work!);
  await mkdir(work, { recursive: true });
  const report: Record<string, unknown> = { machine: { cores: (await import('node:os')).availableParallelism(), node: process.version } };
  // One table: the mail case's rows, then the service-latency rows (column `idle`: the same probe with the server idle).
  const rows: MailBenchRow[] = [];
  const peers = ['ours', 'encrypted', 'restic', 'borg', 'rsync', 's3'].filter((p) => !values.peers || values.peers.split(',').includes(p));
  let heading = '';
  if (!values.only || values.only === 'mail') {
    const mail = await runMailBench({ workDir: join(work, 'mail'), users: Number(values.users), messagesPerUser: Number(values.messages), days: Number(values.days), log, peers: values.peers?.split(',') });
    report.mail = mail;
    rows.push(...mail.rows);
    heading = `Mail spool: ${mail.corpus.messages} messages, ${mail.corpus.mib.toFixed(0)} MiB, ${values.days} daily increments, ${report.machine && (report.machine as { cores: number }).cores} cores`;
  }
  if (!values.only || values.only === 'latency') {
    const users = Number(values['host-users']);
    const lat = await runLatencyBench({ workDir: join(work, 'latency'), users, messagesPerUser: Number(values['host-messages']), log });
    report.latency = lat;
    rows.push(...lat.rows);
    if (!peers.includes('idle')) peers.push('idle');
    heading += `${heading ? '; ' : ''}service latency during backups of a ${users}-user reference host through the plugin's server (first ${lat.first.seconds.toFixed(1)} s, incremental ${lat.incremental.seconds.toFixed(1)} s)`;
  }
  if (rows.length) {
    console.log(`\n${heading}\n`);
    console.log(table(rows, values.only === 'latency' ? ['ours', 'idle'] : peers));
    const cost = encryptionCost(rows);
    if (cost) console.log(`\n${cost}`);
  }
  const dbModule = new URL('./database.js', import.meta.url);
  if ((!values.only || values.only === 'database') && existsSync(dbModule)) {
    const { runDatabaseBench } = (await import(dbModule.href)) as { runDatabaseBench: (o: { workDir: string; log: (s: string) => void }) => Promise<Record<string, number | string>> };
    const db = await runDatabaseBench({ workDir: join(work, 'database'), log });
    report.database = db;
    console.log('\nDatabase part:\n');
    for (const [k, v] of Object.entries(db)) console.log(`  ${k}: ${v}`);
  }
  if (!values.only || values.only === 'global-restore') {
    const { runGlobalRestoreBench, printGlobalRestoreBench } = await import('./global-restore.js');
    const gr = await runGlobalRestoreBench({ workDir: join(work, 'global-restore'), log });
    report.globalRestore = gr;
    printGlobalRestoreBench(gr);
  }
  await writeFile(join(work, 'results.json'), JSON.stringify(report, null, 2));
  console.log(`\nfigures saved in ${join(work, 'results.json')}`);
}

main().catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
