import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { churn, generateSpool, userName } from '../../server/demo/mail-spool.js';
import { startS3, TEST_BUCKET } from '../storage/s3-server.js';
import { informative, vs, type BenchRow, type Target } from './table.js';
import { BM_DATAPROTECT, diskBytes, measure, treeStats, type Measure } from './tools.js';

/**
 * The mail-spool case: our engine, restic (compression auto), borg (lz4) and rsync --link-dest
 * (BlueMind's own method) on the same generated spool, the same daily churn, in one run.
 */


interface Peer {
  name: string;
  init(): Promise<void>;
  backup(day: number): Promise<Measure>;
  restoreOne(user: string, target: string): Promise<Measure>;
  restoreAll(target: string): Promise<Measure>;
  /** Reads back every byte of the repository and verifies it (none for rsync). */
  checkData?(): Promise<Measure>;
  /** Where the restored spool lands below the target. */
  restoredSpool(target: string): string;
  repo: string;
}

export interface MailBenchOptions {
  workDir: string;
  users: number;
  messagesPerUser: number;
  days: number;
  log: (line: string) => void;
  /** Which peers run (all by default): ours, encrypted (ours, encrypted), s3 (ours into s3rver on loopback), restic, borg, rsync. */
  peers?: string[];
}

export async function runMailBench(o: MailBenchOptions): Promise<{ rows: BenchRow[]; corpus: Record<string, number> }> {
  const work = resolve(o.workDir);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const spool = join(work, 'spool');
  o.log(`generating a spool of ${o.users} users x ${o.messagesPerUser} messages in ${spool} ...`);
  const messages = await generateSpool(spool, { users: o.users, messagesPerUser: o.messagesPerUser });
  const corpus = treeStats(spool);
  o.log(`  ${messages} messages, ${(corpus.bytes / 2 ** 20).toFixed(0)} MiB`);

  // Ours again, into an S3 bucket (s3rver on loopback, in this process): what the S3 backend costs over a local disk.
  const s3 = o.peers && !o.peers.includes('s3') ? undefined : await startS3();
  const s3Repo = `s3://${TEST_BUCKET}/bench`;
  // Our files cache (as restic's cache in the scale case) inside the work folder, not the user's ~/.cache.
  const cache = { DP_CACHE_DIR: join(work, 'cache-ours') };
  const encrypted = { DP_REPOSITORY_PASSWORD: 'bench-only', DP_REPOSITORY_PASSWORD_FILE: '', ...cache };
  const env = { RESTIC_PASSWORD: 'bench-only', BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
  const peers: Peer[] = [
    {
      name: 'ours',
      repo: join(work, 'repo-ours'),
      async init() {
        await measure(BM_DATAPROTECT, ['repo', 'init', '--repo', this.repo]);
      },
      backup() {
        return measure(BM_DATAPROTECT, ['backup', '--repo', this.repo, '--tag', 'mail/imap', '--server', 'bench', spool, '--json'], { env: cache });
      },
      restoreOne(user, target) {
        return measure(BM_DATAPROTECT, ['restore', 'latest', '--repo', this.repo, '--include', join(spool, user), '--target', target, '--json']);
      },
      restoreAll(target) {
        return measure(BM_DATAPROTECT, ['restore', 'latest', '--repo', this.repo, '--target', target, '--json']);
      },
      checkData() {
        return measure(BM_DATAPROTECT, ['check', '--read-data', '--repo', this.repo, '--json']);
      },
      restoredSpool: (t) => join(t, spool),
    },
    {
      // Ours again, into an encrypted repository on the same disk: what encryption costs.
      name: 'encrypted',
      repo: join(work, 'repo-encrypted'),
      async init() {
        await measure(BM_DATAPROTECT, ['repo', 'init', '--encryption', '--repo', this.repo], { env: encrypted });
      },
      backup() {
        return measure(BM_DATAPROTECT, ['backup', '--repo', this.repo, '--tag', 'mail/imap', '--server', 'bench', spool, '--json'], { env: encrypted });
      },
      restoreOne(user, target) {
        return measure(BM_DATAPROTECT, ['restore', 'latest', '--repo', this.repo, '--include', join(spool, user), '--target', target, '--json'], { env: encrypted });
      },
      restoreAll(target) {
        return measure(BM_DATAPROTECT, ['restore', 'latest', '--repo', this.repo, '--target', target, '--json'], { env: encrypted });
      },
      checkData() {
        return measure(BM_DATAPROTECT, ['check', '--read-data', '--repo', this.repo, '--json'], { env: encrypted });
      },
      restoredSpool: (t) => join(t, spool),
    },
    {
      name: 's3',
      repo: s3?.directory ?? '',
      async init() {
        await measure(BM_DATAPROTECT, ['repo', 'init', '--repo', s3Repo], { env: s3!.env });
      },
      backup() {
        return measure(BM_DATAPROTECT, ['backup', '--repo', s3Repo, '--tag', 'mail/imap', '--server', 'bench', spool, '--json'], { env: { ...s3!.env, ...cache } });
      },
      restoreOne(user, target) {
        return measure(BM_DATAPROTECT, ['restore', 'latest', '--repo', s3Repo, '--include', join(spool, user), '--target', target, '--json'], { env: s3!.env });
      },
      restoreAll(target) {
        return measure(BM_DATAPROTECT, ['restore', 'latest', '--repo', s3Repo, '--target', target, '--json'], { env: s3!.env });
      },
      checkData() {
        return measure(BM_DATAPROTECT, ['check', '--read-data', '--repo', s3Repo, '--json'], { env: s3!.env });
      },
      restoredSpool: (t) => join(t, spool),
    },
    {
      name: 'restic',
      repo: join(work, 'repo-restic'),
      async init() {
        await measure('restic', ['-r', this.repo, 'init', '-q'], { env });
      },
      backup() {
        return measure('restic', ['-r', this.repo, 'backup', '-q', '--compression', 'auto', '--host', 'bench', spool], { env });
      },
      restoreOne(user, target) {
        return measure('restic', ['-r', this.repo, 'restore', 'latest', '-q', '--include', join(spool, user), '--target', target], { env });
      },
      restoreAll(target) {
        return measure('restic', ['-r', this.repo, 'restore', 'latest', '-q', '--target', target], { env });
      },
      checkData() {
        return measure('restic', ['-r', this.repo, 'check', '--read-data', '-q'], { env });
      },
      restoredSpool: (t) => join(t, spool),
    },
    {
      name: 'borg',
      repo: join(work, 'repo-borg'),
      async init() {
        await measure('borg', ['init', '-e', 'none', this.repo], { env });
      },
      backup(day) {
        return measure('borg', ['create', '--compression', 'lz4', `${this.repo}::day${day}`, 'spool'], { env, cwd: work });
      },
      async restoreOne(user, target) {
        await mkdir(target, { recursive: true });
        return measure('borg', ['extract', `${this.repo}::day${o.days}`, `spool/${user}`], { env, cwd: target });
      },
      async restoreAll(target) {
        await mkdir(target, { recursive: true });
        return measure('borg', ['extract', `${this.repo}::day${o.days}`], { env, cwd: target });
      },
      checkData() {
        return measure('borg', ['check', '--verify-data', this.repo], { env });
      },
      restoredSpool: (t) => join(t, 'spool'),
    },
    {
      name: 'rsync',
      repo: join(work, 'repo-rsync'),
      async init() {
        await mkdir(this.repo, { recursive: true });
      },
      backup(day) {
        const link = day > 0 ? [`--link-dest=${join(this.repo, `day${day - 1}`)}`] : [];
        return measure('rsync', ['-a', ...link, `${spool}/`, join(this.repo, `day${day}`) + '/']);
      },
      async restoreOne(user, target) {
        await mkdir(join(target, 'spool'), { recursive: true });
        return measure('rsync', ['-a', join(this.repo, `day${o.days}`, user) + '/', join(target, 'spool', user) + '/']);
      },
      async restoreAll(target) {
        await mkdir(target, { recursive: true });
        return measure('rsync', ['-a', join(this.repo, `day${o.days}`) + '/', join(target, 'spool') + '/']);
      },
      restoredSpool: (t) => join(t, 'spool'),
    },
  ];

  if (o.peers) peers.splice(0, peers.length, ...peers.filter((p) => o.peers!.includes(p.name)));
  try {
    return await runPeers(o, work, spool, messages, corpus, peers);
  } finally {
    await s3?.stop();
  }
}

async function runPeers(o: MailBenchOptions, work: string, spool: string, messages: number, corpus: { files: number; bytes: number }, peers: Peer[]): Promise<{ rows: BenchRow[]; corpus: Record<string, number> }> {
  const rows: BenchRow[] = [];
  const row = (metric: string, unit: string, ...targets: Target[]): BenchRow => {
    const r: BenchRow = { metric, unit, values: {}, targets: targets.length ? targets : undefined };
    rows.push(r);
    return r;
  };
  // Peak memory of each step, each its own row (GNU time's maximum resident set of the command).
  const memory = {
    first: { metric: 'peak memory, first backup', unit: 'MiB', values: {}, targets: [vs('restic', 1.5)] } as BenchRow,
    incremental: { metric: 'peak memory, daily incremental', unit: 'MiB', values: {}, targets: [vs('restic', 1.5)] } as BenchRow,
    one: { metric: 'peak memory, restore one mailbox', unit: 'MiB', values: {}, targets: [vs('restic', 1.5)] } as BenchRow,
    all: { metric: 'peak memory, restore everything', unit: 'MiB', values: {}, targets: [vs('restic', 1.5)] } as BenchRow,
    check: { metric: 'peak memory, check --read-data', unit: 'MiB', values: {}, targets: [vs('restic', 1.5)] } as BenchRow,
  };
  const record = (step: keyof typeof memory, name: string, m: Measure) => (memory[step].values[name] = Math.max(memory[step].values[name] ?? 0, m.maxRssMiB));

  for (const p of peers) await p.init();
  const first = row('first backup', 's', vs('borg', 0.8), vs('restic', 1));
  const firstCpu = row('first backup, CPU (user + system)', 's', informative);
  for (const p of peers) {
    o.log(`first backup: ${p.name} ...`);
    const m = await p.backup(0);
    first.values[p.name] = m.seconds;
    firstCpu.values[p.name] = m.cpuSeconds;
    record('first', p.name, m);
  }
  const incr = row(`daily incremental (mean of ${o.days})`, 's', vs('rsync', 0.5));
  for (let day = 1; day <= o.days; day++) {
    const c = await churn(spool, { day });
    o.log(`day ${day}: ${c.added} new, ${c.deleted} deleted, ${c.flagged} flag changes, ${c.moved} moved`);
    for (const p of peers) {
      const m = await p.backup(day);
      incr.values[p.name] = (incr.values[p.name] ?? 0) + m.seconds / o.days;
      record('incremental', p.name, m);
    }
  }
  const finalState = treeStats(spool);
  const size = row(`repository size after ${o.days} increments`, 'MiB', vs('restic', 0.85));
  for (const p of peers) size.values[p.name] = diskBytes(p.repo) / 2 ** 20;

  const user = userName(7);
  const oneState = treeStats(join(spool, user));
  const one = row(`restore one mailbox (${oneState.files} files; median of 3)`, 's', vs('borg', 0.5));
  const all = row('restore everything', 's', vs('restic', 1));
  for (const p of peers) {
    // A fraction of a second, where one run is mostly noise: each peer's median run of three counts.
    const runs: Measure[] = [];
    for (let i = 0; i < 3; i++) {
      const t1 = join(work, `restore-one-${p.name}`);
      runs.push(await p.restoreOne(user, t1));
      const got1 = treeStats(join(p.restoredSpool(t1), user));
      if (got1.files !== oneState.files || got1.bytes !== oneState.bytes) throw new Error(`${p.name}: one-mailbox restore gave ${got1.files} files / ${got1.bytes} bytes, expected ${oneState.files} / ${oneState.bytes}`);
      await rm(t1, { recursive: true, force: true });
    }
    const m1 = [...runs].sort((a, b) => a.seconds - b.seconds)[1];
    one.values[p.name] = m1.seconds;
    record('one', p.name, m1);
    const t2 = join(work, `restore-all-${p.name}`);
    const m2 = await p.restoreAll(t2);
    all.values[p.name] = m2.seconds;
    record('all', p.name, m2);
    const got2 = treeStats(p.restoredSpool(t2));
    if (got2.files !== finalState.files || got2.bytes !== finalState.bytes) throw new Error(`${p.name}: full restore gave ${got2.files} files / ${got2.bytes} bytes, expected ${finalState.files} / ${finalState.bytes}`);
    await rm(t2, { recursive: true, force: true });
    o.log(`restores: ${p.name} done`);
  }
  const check = row('check --read-data (borg: check --verify-data)', 's', vs('restic', 0.8));
  for (const p of peers) {
    if (!p.checkData) continue;
    o.log(`check --read-data: ${p.name} ...`);
    const m = await p.checkData();
    check.values[p.name] = m.seconds;
    record('check', p.name, m);
  }
  rows.push(...Object.values(memory));
  return { rows, corpus: { messages, files: corpus.files, mib: corpus.bytes / 2 ** 20, finalFiles: finalState.files } };
}
