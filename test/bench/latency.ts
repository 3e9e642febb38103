/**
 * Service latency during a backup (called by run.ts): a reference host of `users` users is seeded, the reference
 * console (`dist/plugin/standalone/main.js`, the plugin's server) starts on it as its own process, and while a
 * first generation and then an incremental one run through that server, this process probes, one request after
 * another:
 *
 *   - the API: GET /api/dataprotect/generations/_detailed (what the console polls), and the running task's event
 *     stream (time to its first event); GET /session beside them (no repository work: what it waits for is the
 *     server's event loop);
 *   - IMAP on the host's Dovecot, for three users at once, each in its own loop: login, select INBOX, fetch every
 *     message's flags, fetch one message whole, logout (one sample is the whole round);
 *   - PostgreSQL: one simple query on the host's database (the first rows of its largest table), from two
 *     connections at once.
 *
 * The same probes run with the server idle, half of them before the runs and half after (so that a change in the
 * machine's other load during the case weighs on the idle figures as on the others; each half after a warm-up,
 * the one after also reads the generations the runs added). Rows: p50 and p99 of each beside idle, with the targets
 * (API p99 <= 50 ms; IMAP and PostgreSQL p99 <= 1.5x idle during the first backup, <= 1.3x during the incremental).
 * A p99 needs a few hundred samples to be more than the single slowest one: hence several IMAP users and
 * PostgreSQL connections (the same during the idle phase), and the incremental run INCREMENTAL_RUNS times, its
 * samples pooled (each run is a nightly incremental of the unchanged host; its time is their mean).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import { connect } from '../../server/pg/client.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { parseDatabaseUrl, siblingDatabaseUrl } from '../../server/pg/settings.js';
import { IMAP_ADMIN_USER, imapAdminPassword } from '../../server/host/reference/credentials.js';
import { dovecotEndpoint } from '../../server/host/reference/dovecot.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { hostDatabaseOf } from '../../plugin/standalone/reference-host.js';
import { atMost, vs, type BenchRow } from './table.js';

const MAIN = fileURLToPath(new URL('../../plugin/standalone/main.js', import.meta.url));

export interface LatencyBenchOptions {
  workDir: string;
  users: number;
  messagesPerUser: number;
  log: (line: string) => void;
}

interface Samples {
  api: number[];
  /** GET /session: no repository or generation work, so what it waits for is the server's event loop. */
  session: number[];
  events: number[];
  imap: number[];
  pg: number[];
}

export interface LatencyBench {
  users: number;
  idle: Samples;
  first: Samples & { seconds: number };
  /** The incremental runs pooled: their samples together, their mean time. */
  incremental: Samples & { seconds: number; runs: number };
  rows: BenchRow[];
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Concurrent IMAP users and PostgreSQL connections probing, and incremental runs pooled: see above. */
const IMAP_USERS = 3;
const PG_CONNECTIONS = 2;
const INCREMENTAL_RUNS = 3;

const ms = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e6;
const pause = (n: number) => new Promise((r) => setTimeout(r, n));

export async function runLatencyBench(o: LatencyBenchOptions): Promise<LatencyBench> {
  const work = resolve(o.workDir);
  await rm(work, { recursive: true, force: true });
  const varDir = join(work, 'var');
  await mkdir(varDir, { recursive: true });
  const base = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const databaseUrl = siblingDatabaseUrl(base, `dp_bench_lat_${randomBytes(3).toString('hex')}`);
  const hostDb = hostDatabaseOf(databaseUrl);
  const hostRoot = join(varDir, 'host');
  const key = randomBytes(18).toString('base64url');
  let child: ChildProcess | undefined;
  try {
    // Seeded here, with the bench's size, where the console finds it (it seeds 12 users itself otherwise).
    o.log(`latency: seeding a reference host of ${o.users} users x ${o.messagesPerUser} messages`);
    await seedReference({ connection: hostDb, root: hostRoot, users: o.users, messagesPerUser: o.messagesPerUser });
    o.log('latency: starting the reference console (the plugin\'s server) on it');
    const started = await startConsole(databaseUrl, varDir, key, join(work, '..', 'latency-console.log'));
    child = started.child;
    const api = started.url + '/api/dataprotect';
    const headers = { 'X-BM-ApiKey': key };

    const layout = hostLayout(hostRoot);
    const endpoint = await dovecotEndpoint(layout);
    const domain = (await readdir(layout.spool)).sort()[0];
    const mailboxes = (await readdir(join(layout.spool, domain))).filter((n) => n.includes('.')).sort().slice(0, IMAP_USERS);
    if (mailboxes.length < IMAP_USERS) throw new Error(`the host has ${mailboxes.length} mailboxes in ${domain}, the bench probes ${IMAP_USERS}`);
    const pass = await imapAdminPassword(layout);
    const pgs = await Promise.all(Array.from({ length: PG_CONNECTIONS }, () => connect(hostDb)));
    const pg = pgs[0];
    const table = (await pg.query<{ t: string }>(`SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY c.reltuples DESC, c.relname LIMIT 1`)).rows[0].t;

    const probes = {
      async api(): Promise<number> {
        const t = process.hrtime.bigint();
        const r = await fetch(`${api}/generations/_detailed`, { headers });
        await r.arrayBuffer();
        if (!r.ok) throw new Error(`GET /generations/_detailed answered ${r.status}`);
        return ms(t);
      },
      async session(): Promise<number> {
        const t = process.hrtime.bigint();
        const r = await fetch(`${api}/session`, { headers });
        await r.arrayBuffer();
        if (!r.ok) throw new Error(`GET /session answered ${r.status}`);
        return ms(t);
      },
      async events(taskId: string): Promise<number> {
        const t = process.hrtime.bigint();
        const ac = new AbortController();
        const r = await fetch(`${api}/tasks/${taskId}/events`, { headers, signal: ac.signal });
        if (!r.ok) throw new Error(`GET /tasks/${taskId}/events answered ${r.status}`);
        const reader = r.body!.getReader();
        await reader.read();
        const elapsed = ms(t);
        ac.abort();
        await reader.cancel().catch(() => {});
        return elapsed;
      },
      async imap(mailbox: string): Promise<number> {
        const t = process.hrtime.bigint();
        const auth = { user: `${mailbox}@${domain}*${IMAP_ADMIN_USER}`, pass };
        const c = new ImapFlow({ host: endpoint.host, port: endpoint.port, secure: false, logger: false, auth });
        await c.connect();
        try {
          const box = await c.mailboxOpen('INBOX');
          let seen = 0;
          for await (const m of c.fetch('1:*', { flags: true })) if (m.flags) seen++;
          if (seen === 0 || box.exists === 0) throw new Error(`the INBOX of ${mailbox}@${domain} is empty`);
          const one = await c.fetchOne(String(box.exists), { source: true });
          if (!one || !one.source?.length) throw new Error('fetching one message gave nothing');
          await c.logout();
        } catch (err) {
          c.close();
          throw err;
        }
        return ms(t);
      },
      async pg(client: typeof pg): Promise<number> {
        const t = process.hrtime.bigint();
        await client.query(`SELECT * FROM ${table} LIMIT 20`);
        return ms(t);
      },
    };

    /** Runs every probe in its own loop (a short pause between samples) until `done` says so. */
    const sample = async (until: (s: Samples) => boolean | Promise<boolean>, taskId?: string): Promise<Samples> => {
      const s: Samples = { api: [], session: [], events: [], imap: [], pg: [] };
      let stop = false;
      const loop = async (run: () => Promise<number>, into: number[], gap: number) => {
        while (!stop) {
          into.push(await run());
          await pause(gap);
        }
      };
      const loops = [
        loop(probes.api, s.api, 20), loop(probes.session, s.session, 20),
        ...mailboxes.map((m) => loop(() => probes.imap(m), s.imap, 50)),
        ...pgs.map((c) => loop(() => probes.pg(c), s.pg, 20)),
      ];
      if (taskId) loops.push(loop(() => probes.events(taskId), s.events, 50));
      const watch = (async () => {
        while (!(await until(s))) await pause(100);
        stop = true;
      })();
      await Promise.all([watch, ...loops.map((l) => l.catch((err: unknown) => ((stop = true), Promise.reject(err))))]);
      return s;
    };

    const backup = async (label: string): Promise<Samples & { seconds: number }> => {
      const r = await fetch(`${api}/backups`, { method: 'POST', headers });
      if (!r.ok) throw new Error(`starting a backup answered ${r.status}: ${await r.text()}`);
      const { task } = (await r.json()) as { task: { id: string } };
      o.log(`latency: ${label} backup running (task ${task.id}), probing`);
      const t = process.hrtime.bigint();
      let status = 'RUNNING';
      const s = await sample(async () => {
        const tr = await fetch(`${api}/tasks/${task.id}`, { headers });
        status = ((await tr.json()) as { status: string }).status;
        return status !== 'RUNNING';
      }, task.id);
      const seconds = ms(t) / 1000;
      if (status !== 'SUCCEEDED') throw new Error(`the ${label} backup ended ${status}`);
      o.log(`latency: ${label} backup took ${seconds.toFixed(1)} s; ${s.api.length} API, ${s.events.length} event-stream, ${s.imap.length} IMAP, ${s.pg.length} PostgreSQL samples`);
      return { ...s, seconds };
    };

    /** Half of the idle figures: a warm-up (connections, Dovecot's indexes, the query plan, the generations list), then the samples. */
    const idleHalf = async (when: string) => {
      o.log(`latency: idle probes, ${when}`);
      await sample((s) => s.imap.length >= 5 * IMAP_USERS && s.api.length >= 20);
      const s = await sample((x) => x.imap.length >= 200 && x.api.length >= 200 && x.pg.length >= 500);
      o.log(`latency: idle ${when}: ${s.api.length} API, ${s.imap.length} IMAP, ${s.pg.length} PostgreSQL samples`);
      return { ...s, seconds: 0 };
    };
    const before = await idleHalf('before the runs');
    const first = await backup('first');
    const runs: (Samples & { seconds: number })[] = [];
    for (let i = 1; i <= INCREMENTAL_RUNS; i++) runs.push(await backup(`incremental ${i}/${INCREMENTAL_RUNS}`));
    const incremental = pooled(runs);
    const idle = pooled([before, await idleHalf('after the runs')]);
    await Promise.all(pgs.map((c) => c.end()));
    return { users: o.users, idle, first, incremental: { ...incremental, runs: runs.length }, rows: rows(o.users, idle, first, incremental) };
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await dropDatabase(databaseUrl).catch(() => {});
    await dropDatabase(hostDb, hostDb.database).catch(() => {});
    await rm(work, { recursive: true, force: true });
  }
}

/** Samples of several runs as one, with their mean time. */
function pooled(runs: (Samples & { seconds: number })[]): Samples & { seconds: number } {
  const all = (k: keyof Samples) => runs.flatMap((r) => r[k]);
  return {
    api: all('api'), session: all('session'), events: all('events'), imap: all('imap'), pg: all('pg'),
    seconds: runs.reduce((t, r) => t + r.seconds, 0) / runs.length,
  };
}

function rows(users: number, idle: Samples, first: Samples, incremental: Samples): BenchRow[] {
  const out: BenchRow[] = [];
  const of = (s: Samples, k: keyof Samples, p: number) => percentile(s[k], p);
  for (const [run, s, factor] of [['first backup', first, 1.5], ['incremental', incremental, 1.3]] as const) {
    const during = `during ${run} (${users} users)`;
    out.push({ metric: `API p50 ${during}`, unit: 'ms', values: { ours: of(s, 'api', 50), idle: of(idle, 'api', 50) } });
    out.push({ metric: `API p99 ${during}`, unit: 'ms', values: { ours: of(s, 'api', 99), idle: of(idle, 'api', 99) }, targets: [atMost(50, '<= 50 ms')] });
    out.push({ metric: `API p99 GET /session ${during}`, unit: 'ms', values: { ours: of(s, 'session', 99), idle: of(idle, 'session', 99) } });
    out.push({ metric: `task event stream p99 ${during}`, unit: 'ms', values: { ours: of(s, 'events', 99) }, targets: [atMost(50, '<= 50 ms')] });
    out.push({ metric: `IMAP round p50 ${during}`, unit: 'ms', values: { ours: of(s, 'imap', 50), idle: of(idle, 'imap', 50) } });
    out.push({ metric: `IMAP round p99 ${during}`, unit: 'ms', values: { ours: of(s, 'imap', 99), idle: of(idle, 'imap', 99) }, targets: [vs('idle', factor)] });
    out.push({ metric: `PostgreSQL query p50 ${during}`, unit: 'ms', values: { ours: of(s, 'pg', 50), idle: of(idle, 'pg', 50) } });
    out.push({ metric: `PostgreSQL query p99 ${during}`, unit: 'ms', values: { ours: of(s, 'pg', 99), idle: of(idle, 'pg', 99) }, targets: [vs('idle', factor)] });
  }
  return out;
}

/** The console as its own process, on a free port, its log (warnings and errors) in `logFile`; resolves once it serves. */
async function startConsole(databaseUrl: string, varDir: string, key: string, logFile: string): Promise<{ child: ChildProcess; url: string }> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run 'npm run build'`);
  parseDatabaseUrl(databaseUrl);
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: databaseUrl, DP_VAR_DIR: varDir, DP_ADMIN_KEY: key, DP_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Its warnings and errors (a 500's cause) stay beside the bench's results.
  const log = createWriteStream(logFile);
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the console did not start within 120 s: ${out}`)), 120_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /console: (http:\/\/\S+)/.exec(out);
      if (m && out.includes('scheduler ')) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`the console exited ${code}: ${out}`))));
  });
  return { child, url };
}
