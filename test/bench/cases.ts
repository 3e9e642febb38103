/**
 * The cases of `npm run bench`, in the order they run: what each measures goes into results.json whole, and into
 * the one table as rows, with a line of the heading naming its corpus. `--only` picks some by name.
 */

import { join } from 'node:path';
import { runDatabaseBench } from './database.js';
import { HOST_MESSAGES, runEntityScaleBench, SPOOL_MESSAGES } from './entity-scale.js';
import { runGlobalRestoreBench } from './global-restore.js';
import { runIndexSizeBench } from './index-size.js';
import { runLatencyBench } from './latency.js';
import { runMailBench } from './mail.js';
import { runScaleBench } from './scale.js';
import { informative, vs, type BenchRow } from './table.js';

export interface BenchSettings {
  work: string;
  users: number;
  messages: number;
  days: number;
  peers?: string[];
  hostUsers: number;
  hostMessages: number;
  entityUsers: [number, number];
  scaleFiles: number;
  indexBlobs: number;
  log: (line: string) => void;
}

export interface CaseResult {
  heading: string;
  rows: BenchRow[];
  /** Everything measured, for results.json. */
  figures: unknown;
  /** Lines printed under the table. */
  notes?: string[];
}

export interface BenchCase {
  name: string;
  run(s: BenchSettings): Promise<CaseResult>;
}

const mib = (n: number) => n / 2 ** 20;
const n = (x: number) => x.toLocaleString('en-US');

/** The `encrypted` line: what encryption costs over the same local repository (target: under 10% on the first backup). */
function encryptionCost(rows: BenchRow[]): string | null {
  const pick = (prefix: string) => rows.find((r) => r.metric.startsWith(prefix))?.values;
  const parts: string[] = [];
  for (const [label, prefix] of [['first backup', 'first backup'], ['first backup CPU', 'first backup, CPU'], ['one-mailbox restore', 'restore one mailbox']] as const) {
    const v = pick(prefix);
    if (!v?.ours || !v.encrypted) continue;
    parts.push(`${label} ${v.encrypted.toFixed(2)} s vs ${v.ours.toFixed(2)} s (${v.encrypted >= v.ours ? '+' : ''}${(((v.encrypted - v.ours) / v.ours) * 100).toFixed(1)}%)`);
  }
  return parts.length ? `encrypted (AES-256-GCM, keyed ids) beside local: ${parts.join('; ')}; target under 10% on the first backup` : null;
}

const mail: BenchCase = {
  name: 'mail',
  async run(s) {
    const r = await runMailBench({ workDir: join(s.work, 'mail'), users: s.users, messagesPerUser: s.messages, days: s.days, log: s.log, peers: s.peers });
    const cost = encryptionCost(r.rows);
    return {
      heading: `mail spool: ${n(r.corpus.messages)} messages, ${r.corpus.mib.toFixed(0)} MiB, ${s.days} daily increments (encrypted: ours into an encrypted repository; s3: ours into s3rver on loopback)`,
      rows: r.rows,
      figures: r,
      notes: cost ? [cost] : [],
    };
  },
};

const database: BenchCase = {
  name: 'database',
  async run(s) {
    const d = await runDatabaseBench({ workDir: join(s.work, 'database'), log: s.log });
    const num = (k: string) => (typeof d[k] === 'number' ? (d[k] as number) : NaN);
    const rows: BenchRow[] = [
      { metric: 'database: first generation (dump + entity exports + manifest)', unit: 'MiB', values: { ours: mib(num('oursGen1Bytes')), restic: mib(num('resticGen1Bytes')) }, targets: [vs('restic', 1.3)] },
      { metric: 'database: first generation, time', unit: 's', values: { ours: num('oursGen1Seconds'), restic: num('resticGen1Seconds') }, targets: [informative] },
      {
        metric: `database: generation after 1% of rows updated at scattered places (${n(num('rowsChangedItems'))} items)`, unit: 'MiB',
        values: { ours: mib(num('oursGen3Bytes')), restic: mib(num('resticGen3Bytes')) }, targets: [vs('restic', 0.25)],
      },
      {
        metric: `database: generation after 1% of items changed in runs of 16 (${n(num('changedItems'))} items)`, unit: 'MiB',
        values: { ours: mib(num('oursGen2Bytes')), restic: mib(num('resticGen2Bytes')) }, targets: [informative],
      },
      { metric: 'database: restore into a new database (checked table by table)', unit: 's', values: { ours: num('restoreSeconds') }, targets: [informative] },
    ];
    return { heading: `database: ${n(num('users'))} users, ${n(num('items'))} items, pg_dump of ${mib(num('dumpBytes')).toFixed(0)} MiB; restic: pg_dump | restic backup --stdin`, rows, figures: d };
  },
};

const entity: BenchCase = {
  name: 'entity',
  async run(s) {
    const r = await runEntityScaleBench({ workDir: join(s.work, 'entity'), users: s.entityUsers, log: s.log });
    const [a, b] = s.entityUsers;
    const spool = (u: number) => `${r.mailbox[u].spoolMiB.toFixed(0)} MiB`;
    return {
      heading: `single-entity restores: spools of ${n(a)} and ${n(b)} users x ${SPOOL_MESSAGES} messages (${spool(a)}, ${spool(b)}), reference hosts of ${n(a)} and ${n(b)} users x ${HOST_MESSAGES} messages; median of 3 runs`,
      rows: r.rows,
      figures: r,
    };
  },
};

const scale: BenchCase = {
  name: 'scale',
  async run(s) {
    const r = await runScaleBench({ workDir: join(s.work, 'scale'), files: s.scaleFiles, log: s.log, peers: s.peers });
    return { heading: `scale: ${n(r.files)} small files (1 to 8 KiB, ${r.mib.toFixed(0)} MiB, 100 per folder), then 1% new files`, rows: r.rows, figures: r };
  },
};

const index: BenchCase = {
  name: 'index',
  async run(s) {
    const r = await runIndexSizeBench({ blobs: s.indexBlobs, log: s.log });
    return { heading: `index: ${n(r.blobs)} synthetic blob ids in a BlobIndex (child process)`, rows: r.rows, figures: r };
  },
};

const latency: BenchCase = {
  name: 'latency',
  async run(s) {
    const r = await runLatencyBench({ workDir: join(s.work, 'latency'), users: s.hostUsers, messagesPerUser: s.hostMessages, log: s.log });
    return {
      heading: `service latency during backups of a ${n(s.hostUsers)}-user reference host through the plugin's server (first ${r.first.seconds.toFixed(1)} s, incremental ${r.incremental.seconds.toFixed(1)} s, mean of ${r.incremental.runs} runs; IMAP rounds sampled: idle ${r.idle.imap.length}, first ${r.first.imap.length}, incremental ${r.incremental.imap.length}; idle: the same probes with the server idle, half before the runs and half after)`,
      rows: r.rows,
      figures: r,
    };
  },
};

const globalRestore: BenchCase = {
  name: 'global-restore',
  async run(s) {
    const r = await runGlobalRestoreBench({ workDir: join(s.work, 'global-restore'), log: s.log });
    for (const [part, secs] of Object.entries(r.parts)) s.log(`global restore: ${part.padEnd(28)} ${secs.toFixed(1)} s`);
    return {
      heading: `global restore of a ${n(r.users)}-user reference host (${n(r.messages)} messages, ${mib(r.restoredBytes).toFixed(1)} MiB restored); ref: pg_restore + cp -a of the same data`,
      rows: [{ metric: `global restore, ${n(r.users)} users (ref: pg_restore + cp -a)`, unit: 's', values: { ours: r.globalRestoreSeconds, ref: r.floorSeconds }, targets: [informative] }],
      figures: r,
    };
  },
};

export const CASES: BenchCase[] = [mail, database, entity, scale, index, latency, globalRestore];
