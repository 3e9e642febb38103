import 'reflect-metadata';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerServer } from '../../plugin/server.js';
import { processAlive } from '../../server/engine/index.js';
import { backupProcess, generationRepositories, type BackupProcess, type BackupProcessCommand } from '../../server/agent/local.js';
import { onPath, prioritized, processPriority } from '../../server/agent/priority.js';
import { runGeneration, type GenerationRunResult } from '../../server/dataprotect/generation/run.js';
import { openLocation } from '../../server/dataprotect/generation/repository.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { withClient } from '../../server/pg/client.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { databaseUrlOf } from '../../server/pg/settings.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { CLI } from '../engine/cli-helpers.js';
import { KEYS, PG_BASE, testAuth } from '../http/harness.js';
import { ALL_ON, seededHost, type BackupFixture } from '../backup/helpers.js';

// The backup process: the plugin's server backs up its own servers' parts in a child process (`bm-dataprotect agent
// --local`, the real command line) at low CPU and I/O priority, so that its event loop only answers the API. Killed
// mid-part, that part is INVALID with the reason and the rest of the run goes on in a new one; idle, it stops.

let f: BackupFixture;
let cmd: BackupProcessCommand;
const processes: BackupProcess[] = [];

beforeAll(async () => {
  f = await seededHost('bproc', 4);
  cmd = { command: process.execPath, args: [CLI, 'agent', '--local', '--host-root', f.sb.root], env: { DATABASE_URL: databaseUrlOf(f.sb.db) } };
});
afterAll(async () => {
  for (const p of processes) await p.close();
  await f?.cleanup();
});

/** The nice value of a process (field 19 of /proc/PID/stat, after the command's parenthesis). */
async function niceOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** The session id of a process (field 6 of /proc/PID/stat). */
async function sessionOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

async function hashTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out[path.relative(dir, path.join(e.parentPath, e.name))] = createHash('sha256').update(await readFile(path.join(e.parentPath, e.name))).digest('hex');
  }
  return out;
}

const generation = (bp: BackupProcess): Promise<GenerationRunResult> =>
  runGeneration({ repo: f.repo, host: f.host, trigger: 'cli', productVersion: 't', agents: bp.agents, ...ALL_ON });

/** Runs `during` while the run's first part (bm/pgsql) waits for pg_dump, held by a table lock. */
async function whileDumpWaits<T>(run: () => Promise<T>, during: () => Promise<void>): Promise<T> {
  return withClient(f.sb.db, async (c) => {
    await c.query('BEGIN');
    await c.query('LOCK TABLE t_domain IN ACCESS EXCLUSIVE MODE');
    let result: Promise<T>;
    try {
      result = run();
      let waiting = false;
      for (const end = Date.now() + 400_000; !waiting && Date.now() < end; ) {
        await c.query('SELECT pg_stat_clear_snapshot()');
        waiting = Boolean((await c.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock' AND datname = current_database()`)).rowCount);
        if (!waiting) await new Promise((r) => setTimeout(r, 50));
      }
      expect(waiting).toBe(true);
      await during();
    } finally {
      await c.query('ROLLBACK');
    }
    return result!;
  });
}

describe('the backup process', () => {
  it('runs every part at the configured priority (nice, ionice, its own session and scheduling group, its database backends too) while this process keeps its own; killed mid-part, that part is INVALID with the reason, the next parts run in a new one', async () => {
    // A mild value, and long waits: its whole session weighs that little, and on a machine whose cores are busy
    // (a test run beside other work) it must still reach the point where pg_dump waits.
    const bp = backupProcess(cmd, { priority: { nice: 5, io: 'idle' }, idleStopMs: 300 });
    processes.push(bp);
    let killed = 0;
    const r = await whileDumpWaits(() => generation(bp), async () => {
      const pid = bp.pid()!;
      expect(pid).toBeGreaterThan(0);
      expect(await niceOf(pid)).toBe(5);
      expect(await niceOf(process.pid)).toBe(0);
      expect(execFileSync('ionice', ['-p', String(pid)], { encoding: 'utf8' })).toMatch(/^idle/);
      // glibc's malloc arenas set before it started (two, unless this process had its own setting).
      expect((await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0')).toContain(`MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '2'}`);
      // Its own session, so its own scheduling group where the kernel groups by session, at its nice value.
      expect(await sessionOf(pid)).not.toBe(await sessionOf(process.pid));
      if ((await readFile('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').catch(() => '0')).trim() === '1') {
        expect(await readFile(`/proc/${pid}/autogroup`, 'utf8')).toMatch(/ nice 5\n$/);
        // This process's own group at nice 0, or the machine's default group, which the kernel shows as empty.
        expect(await readFile(`/proc/${process.pid}/autogroup`, 'utf8')).toMatch(/^$|^\S+ nice 0\n$/);
      }
      // The waiting pg_dump's backend, a process of the database server, at the backup's nice value too.
      const backend = await withClient(f.sb.db, async (c) =>
        (await c.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dump' AND datname = current_database()`)).rows[0].pid);
      for (const end = Date.now() + 60_000; (await niceOf(backend)) !== 5 && Date.now() < end; ) await new Promise((res) => setTimeout(res, 50));
      expect(await niceOf(backend)).toBe(5);
      process.kill(pid, 'SIGKILL');
      killed = pid;
    });
    const [pgsql, ...rest] = r.generation.parts;
    expect(pgsql.tag).toBe('bm/pgsql');
    expect(pgsql.status).toBe('INVALID');
    expect(pgsql.messages).toEqual([`the backup process (pid ${killed}) ended while backing up the part (killed by SIGKILL); nothing of it is in this generation`]);
    expect(rest.map((p) => [p.tag, p.status])).toEqual(rest.map((p) => [p.tag, 'VALID']));
    expect(r.runStatus).toBe('ERROR');
    expect(bp.pid()).not.toBe(killed);

    const again = await generation(bp);
    expect(again.runStatus).toBe('OK');
    // Made by the agents of the backup process (its snapshots say which server's), not in this process.
    const snaps = await f.repo.listSnapshots();
    const servers = await f.host.servers();
    for (const p of again.generation.parts) {
      expect(snaps.find((s) => s.id === p.snapshot)?.meta?.agent, `${p.server} ${p.tag}`).toBe(servers.find((s) => s.uid === p.server)!.address);
    }
    // Idle, it stops.
    const last = bp.pid()!;
    for (const end = Date.now() + 60_000; processAlive(last) && Date.now() < end; ) await new Promise((res) => setTimeout(res, 50));
    expect(processAlive(last)).toBe(false);
    expect(bp.pid()).toBeNull();
  }, 900_000);

  it('the server killed (kill -9), the backup process ends too: its input ended', async () => {
    // A server of its own that starts the backup process, says its pid, and is killed.
    const local = new URL('../../dist/server/agent/local.js', import.meta.url).href;
    const script = `import { backupProcess } from ${JSON.stringify(local)};
      const bp = backupProcess(${JSON.stringify(cmd)}, { priority: { nice: 10, io: 'low' } });
      await bp.agents({ uid: 'bm-master', address: '127.0.0.1', tags: [] }).backup(
        { generation: 'g', server: 'bm-master', tag: 'bm/conf', time: new Date().toISOString(), repository: '/nonexistent' }, { bytes: () => {} });
      console.log(bp.pid());
      setInterval(() => {}, 1000);`;
    const server = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = Number(await new Promise<string>((resolve) => server.stdout.once('data', (d: Buffer) => resolve(d.toString()))));
    expect(pid).toBeGreaterThan(0);
    expect(processAlive(pid)).toBe(true);
    server.kill('SIGKILL');
    for (const end = Date.now() + 15_000; processAlive(pid) && Date.now() < end; ) await new Promise((res) => setTimeout(res, 50));
    expect(processAlive(pid)).toBe(false);
  });

  it('a process that cannot start makes each part INVALID with the reason', async () => {
    const bp = backupProcess({ command: process.execPath, args: ['-e', 'process.exit(3)'] }, { priority: { nice: 10, io: 'low' } });
    processes.push(bp);
    const r = await generation(bp);
    expect(r.runStatus).toBe('ERROR');
    for (const p of r.generation.parts) expect(p.messages[0]).toMatch(/^the backup process did not start: it ended at once \(exit code 3\)/);
  });

  it("the plugin's server with the installation's backup process: Backup now backs up every part there, and a restore's disk work runs there", async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'dp-bproc-'));
    const databaseUrl = `${PG_BASE}/dp_test_bproc_${randomBytes(5).toString('hex')}`;
    const app = Fastify();
    const reg = await registerServer(
      { fastify: app, databaseUrl, auth: testAuth, defaultRepositoryLocation: path.join(work, 'repository'), taskFilesDir: path.join(work, 'files'), log: { info: () => {}, error: () => {} } },
      { installation: { port: f.host, productVersion: 'test-5.1', mailer: null, backupProcess: cmd } },
    );
    try {
      await app.ready();
      const started = await app.inject({ method: 'POST', url: '/api/dataprotect/backups', headers: { 'x-bm-apikey': KEYS.admin } });
      expect(started.statusCode).toBe(202);
      const done = await reg.container.resolve(TaskRegistry).whenDone(started.json().task.id);
      expect(done?.status, done?.error ?? '').toBe('SUCCEEDED');
      const repo = (await openLocation(path.join(work, 'repository')))!;
      try {
        const snaps = await repo.listSnapshots();
        const parts = snaps.filter((s) => s.server !== '_dataprotect');
        expect(parts.length).toBe(done!.progress.total);
        expect(parts.every((s) => typeof s.meta?.agent === 'string')).toBe(true);
      } finally {
        await repo.close();
      }

      // A restore's disk work runs there too: a domain's file hosting, removed, comes back exactly.
      const layout = hostLayout(f.sb.root);
      const domain = (await readdir(layout.filehosting)).sort()[0];
      const before = await hashTree(path.join(layout.filehosting, domain));
      expect(Object.keys(before).length).toBeGreaterThan(0);
      await rm(path.join(layout.filehosting, domain), { recursive: true });
      const restore = await app.inject({
        method: 'POST', url: '/api/dataprotect/restores', headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'application/json' },
        payload: JSON.stringify({ operation: 'restore.filehosting', generationId: done!.result!.generationId, entity: { kind: 'DOMAIN', uid: domain, domainUid: domain } }),
      });
      expect(restore.statusCode, restore.body).toBe(202);
      const restored = await reg.container.resolve(TaskRegistry).whenDone(restore.json().task.id);
      expect(restored?.status, restored?.error ?? '').toBe('SUCCEEDED');
      expect(restored?.result).toMatchObject({ domain, agent: '127.0.0.1' });
      expect(await hashTree(path.join(layout.filehosting, domain))).toEqual(before);
    } finally {
      await app.close();
      await reg.close();
      await dropDatabase(databaseUrl).catch(() => {});
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('its repository', () => {
  it("the parts of one generation share one opened repository (its index read once); another generation or a restore opens it anew", async () => {
    const repos = generationRepositories(100);
    const signal = new AbortController().signal;
    const a = (await repos.open(f.repoDir, signal, 'g1'))!;
    const b = (await repos.open(f.repoDir, signal, 'g1'))!;
    expect(a.config).toBe(b.config);
    await a.close();
    const c = (await repos.open(f.repoDir, signal, 'g1'))!;
    expect(c.config).toBe(b.config);
    await b.close();
    await c.close();
    const d = (await repos.open(f.repoDir, signal, 'g2'))!;
    expect(d.config).not.toBe(b.config);
    const restore = (await repos.open(f.repoDir, signal))!;
    expect(restore.config).not.toBe(d.config);
    await restore.close();
    // Still usable by its part after the others closed theirs.
    expect(Array.isArray(await d.listSnapshots())).toBe(true);
    await d.close();
    await repos.close();
  });
});

describe('its priority', () => {
  it('chrt, nice and ionice in front of the command when they are on the PATH; without them, a nice value set afterwards and the I/O and CPU classes said missing', () => {
    const found = (n: string) => `/usr/bin/${n}`;
    expect(prioritized('node', ['x'], { nice: 12, io: 'low' }, found)).toEqual({
      command: '/usr/bin/ionice', args: ['-t', '-c', '2', '-n', '7', '/usr/bin/nice', '-n', '12', 'node', 'x'], niced: true, io: 'best effort 7', cpu: 'normal',
    });
    expect(prioritized('node', ['x'], { nice: 19, io: 'idle' }, found).args.slice(0, 3)).toEqual(['-t', '-c', '3']);
    expect(prioritized('node', ['x'], { nice: 0, io: 'normal' }, found)).toEqual({ command: 'node', args: ['x'], niced: true, io: 'normal', cpu: 'normal' });
    expect(prioritized('node', ['x'], { nice: 10, io: 'idle', cpu: 'idle' }, () => null)).toEqual({
      command: 'node', args: ['x'], niced: false, io: 'normal (no ionice on the PATH)', cpu: 'normal (no chrt on the PATH)',
    });
    // The class is set on a shell that then becomes the command, so a refusal does not stop the backup.
    const idle = prioritized('node', ['x'], { nice: 10, io: 'normal', cpu: 'idle' }, found);
    expect(idle).toEqual({
      command: '/usr/bin/sh', args: ['-c', '"$1" --idle -p 0 $$ >/dev/null 2>&1; shift; exec "$@"', 'sh', '/usr/bin/chrt', '/usr/bin/nice', '-n', '10', 'node', 'x'],
      niced: true, io: 'normal', cpu: 'idle',
    });
  });

  it.runIf(process.platform === 'linux' && onPath('chrt') !== null)('the command line it gives runs the command in the idle CPU class at its nice value, every thread of it and every process it starts, and a command that exits says how', () => {
    // The command: a worker thread, and a child process; it prints the class and nice value of each of its threads and of the child.
    const script = `
      const { Worker } = require('node:worker_threads');
      const { execFileSync } = require('node:child_process');
      const fs = require('node:fs');
      const fields = (f) => { const s = fs.readFileSync(f, 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' '); };
      const w = new Worker('setTimeout(() => {}, 2000)', { eval: true });
      w.on('online', () => {
        const threads = fs.readdirSync('/proc/self/task').map((t) => fields('/proc/self/task/' + t + '/stat'));
        const child = execFileSync(process.execPath, ['-e', 'process.stdout.write(require("fs").readFileSync("/proc/self/stat", "utf8"))'], { encoding: 'utf8' });
        process.stdout.write(JSON.stringify({ threads: threads.map((f) => [f[38], f[16]]), child: child.slice(child.lastIndexOf(')') + 2).split(' ')[38] }));
        w.terminate().then(() => { process.exitCode = 3; });
      });`;
    const p = prioritized(process.execPath, ['-e', script], { nice: 7, io: 'normal', cpu: 'idle' });
    const r = spawnSync(p.command, p.args, { encoding: 'utf8' });
    expect(r.status).toBe(3);
    const seen = JSON.parse(r.stdout) as { threads: [string, string][]; child: string };
    expect(seen.threads.length).toBeGreaterThan(2);
    expect(seen.threads).toEqual(seen.threads.map(() => ['5', '7'])); // SCHED_IDLE, nice 7
    expect(seen.child).toBe('5');
  });

  it('comes from DP_BACKUP_NICE, DP_BACKUP_IO and DP_BACKUP_CPU; a bad value is refused with the choices', () => {
    expect(processPriority({})).toEqual({ nice: 10, io: 'low', cpu: 'nice' });
    expect(processPriority({ DP_BACKUP_NICE: '19', DP_BACKUP_IO: 'idle', DP_BACKUP_CPU: 'idle' })).toEqual({ nice: 19, io: 'idle', cpu: 'idle' });
    expect(() => processPriority({ DP_BACKUP_IO: 'fast' })).toThrow('DP_BACKUP_IO=fast is not valid: give low, idle, normal, or unset it for the default (low)');
    expect(() => processPriority({ DP_BACKUP_CPU: 'batch' })).toThrow('DP_BACKUP_CPU=batch is not valid: give nice, idle, or unset it for the default (nice)');
    expect(() => processPriority({ DP_BACKUP_NICE: '25' })).toThrow(/DP_BACKUP_NICE=25 is not valid/);
  });
});
