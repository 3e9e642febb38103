import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerServer, type ServerRegistration } from '../../plugin/server.js';
import { readGenerations } from '../../server/dataprotect/generation/format.js';
import { openLocation } from '../../server/dataprotect/generation/repository.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { BACKUP_RUNNER } from '../../server/dataprotect/services.js';
import { SettingsService } from '../../server/dataprotect/settings.js';
import { ClusterCoordinator } from '../../server/jobs/cluster.js';
import { BackupScheduler } from '../../server/jobs/scheduler.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { withClient } from '../../server/pg/client.js';
import { POOL } from '../../server/store/tokens.js';
import { KEYS, PG_BASE, testAuth } from '../http/harness.js';
import { seededHost, type BackupFixture } from './helpers.js';

// The plugin as a host registers it (registerServer, the real composition), two nodes on one database, driving
// real backups of the seeded reference host through the API.

process.env.DP_VALIDATE_RESPONSES = '1';
let f: BackupFixture;
let work: string;
let repoDir: string;
const databaseUrl = `${PG_BASE}/dp_test_plugin_${randomBytes(5).toString('hex')}`;
const nodes: { app: FastifyInstance; reg: ServerRegistration }[] = [];

async function node(id: string) {
  const app = Fastify();
  const reg = await registerServer(
    { fastify: app, databaseUrl, auth: testAuth, defaultRepositoryLocation: repoDir, taskFilesDir: path.join(work, 'files'), nodeId: id, log: { info: () => {}, error: () => {} } },
    { installation: { port: f.host, productVersion: 'test-5.1', mailer: null } },
  );
  await app.ready();
  nodes.push({ app, reg });
  return { app, reg };
}

const api = (app: FastifyInstance, method: 'GET' | 'POST' | 'DELETE', url: string) =>
  app.inject({ method, url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': KEYS.admin } });

beforeAll(async () => {
  f = await seededHost('plugin');
  work = await mkdtemp(path.join(tmpdir(), 'dp-plugin-backup-'));
  repoDir = path.join(work, 'repository'); // does not exist: the first backup creates it
});
afterAll(async () => {
  for (const n of nodes) {
    await n.app.close();
    await n.reg.close();
  }
  await dropDatabase(databaseUrl).catch(() => {});
  await f?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('backups through the plugin', () => {
  it('Backup now runs a task with progress to a generation; a second Backup now answers the running task', async () => {
    const { app, reg } = await node('node-a');
    expect((await api(app, 'GET', '/generations/_detailed')).json()).toEqual([]);
    const first = await api(app, 'POST', '/backups');
    expect(first.statusCode).toBe(202);
    const again = await api(app, 'POST', '/backups');
    expect(again.statusCode).toBe(202);
    expect(again.json().alreadyRunning).toBe(true);
    expect(again.json().task.id).toBe(first.json().task.id);

    const tasks = reg.container.resolve(TaskRegistry);
    const done = await tasks.whenDone(first.json().task.id);
    expect(done?.status, done?.error ?? '').toBe('SUCCEEDED');
    expect(done?.progress).toMatchObject({ done: 5, total: 5, unit: 'parts' });
    expect(done?.progress.bytes).toBeGreaterThan(0);
    const log = (await api(app, 'GET', `/tasks/${first.json().task.id}/log`)).json() as { message: string }[];
    const lines = (Array.isArray(log) ? log : (log as unknown as { items: { message: string }[] }).items).map((l) => l.message);
    expect(lines.join('\n')).toMatch(/part bm-mail mail\/imap: VALID/);

    const gens = (await api(app, 'GET', '/generations/_detailed')).json();
    expect(gens).toHaveLength(1);
    expect(gens[0]).toMatchObject({ id: done?.result?.generationId, status: 'VALID', runStatus: 'OK', productVersion: 'test-5.1', formatVersion: 1 });
    expect(gens[0].parts.map((p: { tag: string }) => p.tag)).toEqual(['bm/pgsql', 'bm/conf', 'bm/conf', 'filehosting/data', 'mail/imap']);
    const one = await api(app, 'GET', `/generations/${gens[0].id}`);
    expect(one.json()).toEqual(gens[0]);
    expect((await api(app, 'GET', '/generations/20990101-000000-ffff')).statusCode).toBe(404);
  });

  it('sync rebuilds the cache from the repository alone', async () => {
    const { app, reg } = nodes[0];
    const before = (await api(app, 'GET', '/generations/_detailed')).json();
    await reg.container.resolve(POOL).query('DELETE FROM dp_generation');
    expect((await api(app, 'GET', '/generations/_detailed')).json()).toEqual([]);
    const sync = await api(app, 'POST', '/generations/_sync');
    expect(sync.statusCode).toBe(202);
    const t = await reg.container.resolve(TaskRegistry).whenDone(sync.json().task.id);
    expect(t?.status).toBe('SUCCEEDED');
    expect((await api(app, 'GET', '/generations/_detailed')).json()).toEqual(before);
  });

  it('a generation written by another process (the CLI) shows up without a sync', async () => {
    const { app } = nodes[0];
    const before = (await api(app, 'GET', '/generations/_detailed')).json() as { id: string }[];
    const repo = (await openLocation(repoDir))!;
    const r = await runGeneration({ repo, host: f.host, trigger: 'cli', productVersion: 'test-5.1', backupEmails: false, backupArchivedEmails: false, skippedTags: [] });
    await repo.close();
    const after = (await api(app, 'GET', '/generations/_detailed')).json() as { id: string }[];
    expect(after.map((g) => g.id)).toEqual([r.generation.id, ...before.map((g) => g.id)]);
  });

  it('two nodes asked to run the schedule at the same moment make one generation, and the other says so', async () => {
    const a = nodes[0];
    const b = await node('node-b');
    const logs: Record<string, string[]> = { a: [], b: [] };
    const scheduler = (n: typeof a, name: 'a' | 'b') =>
      new BackupScheduler(n.reg.container.resolve(SettingsService), n.reg.container.resolve(BACKUP_RUNNER), n.reg.container.resolve(ClusterCoordinator), {
        info: (m) => logs[name].push(m), error: (m) => logs[name].push(m),
      });
    const now = new Date();
    const outcome = await Promise.all([scheduler(a, 'a').runScheduled(now), scheduler(b, 'b').runScheduled(now)]);
    expect(outcome.sort()).toEqual(['claimed-elsewhere', 'started']);
    expect([...logs.a, ...logs.b].join('\n')).toMatch(/already started by node-/);
    // The same day again: the schedule starts nothing.
    expect(await scheduler(a, 'a').runScheduled(now)).toBe('claimed-elsewhere');
    for (const n of [a, b]) {
      const tasks = n.reg.container.resolve(TaskRegistry);
      const running = await tasks.findRunning('backup');
      if (running) await tasks.whenDone(running.id);
    }
    // Wait for the run wherever it ran, then count.
    for (const end = Date.now() + 240_000; Date.now() < end && (await a.reg.container.resolve(TaskRegistry).findRunning('backup')); ) await new Promise((r) => setTimeout(r, 100));
    const repo = (await openLocation(repoDir))!;
    const gens = await readGenerations(repo);
    await repo.close();
    expect(gens.filter((g) => g.record.trigger === 'schedule')).toHaveLength(1);
    // Backup now on node b while node a runs one: b answers with a's task.
    const started = await api(a.app, 'POST', '/backups');
    const fromB = await api(b.app, 'POST', '/backups');
    expect(fromB.json().alreadyRunning).toBe(true);
    expect(fromB.json().task.id).toBe(started.json().task.id);
    await a.reg.container.resolve(TaskRegistry).whenDone(started.json().task.id);
  });

  it('forget deletes a generation from the repository and the list; retention on demand keeps all of the last 48 hours', async () => {
    const { app, reg } = nodes[0];
    const tasks = reg.container.resolve(TaskRegistry);
    const gens = (await api(app, 'GET', '/generations/_detailed')).json() as { id: string }[];
    // Each run through the plugin applied retention (7 days), which keeps every generation of the last 48 hours.
    expect(gens.length).toBeGreaterThanOrEqual(3);
    const oldest = gens.at(-1)!.id;
    const forget = await api(app, 'DELETE', `/generations/${oldest}`);
    expect(forget.statusCode).toBe(202);
    expect((await tasks.whenDone(forget.json().task.id))?.status).toBe('SUCCEEDED');
    const after = (await api(app, 'GET', '/generations/_detailed')).json() as { id: string }[];
    expect(after.map((g) => g.id)).toEqual(gens.slice(0, -1).map((g) => g.id));
    const repo = (await openLocation(repoDir))!;
    expect((await readGenerations(repo)).map((g) => g.record.id)).not.toContain(oldest);
    await repo.close();
    const backup = await api(app, 'POST', '/backups');
    const made = await tasks.whenDone(backup.json().task.id);
    const ret = await api(app, 'POST', '/retention/_apply');
    expect(ret.statusCode).toBe(202);
    const rt = await tasks.whenDone(ret.json().task.id);
    expect(rt?.status, rt?.error ?? '').toBe('SUCCEEDED');
    expect(rt?.result).toMatchObject({ kept: after.length + 1, removed: 0 });
    const left = (await api(app, 'GET', '/generations/_detailed')).json() as { id: string }[];
    expect(left.map((g) => g.id)).toEqual([made?.result?.generationId, ...after.map((g) => g.id)]);
  });

  it('protect marks a generation in the repository: the list shows it after a rebuild from the repository alone; unprotect clears it', async () => {
    const { app, reg } = nodes[0];
    const tasks = reg.container.resolve(TaskRegistry);
    const gens = (await api(app, 'GET', '/generations/_detailed')).json() as { id: string; protected: boolean }[];
    expect(gens.every((g) => g.protected === false)).toBe(true);
    const target = gens[1].id;
    const r = await api(app, 'POST', `/generations/${target}/_protect`);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ id: target, protected: true });
    expect((await api(app, 'POST', `/generations/${target}/_protect`)).json()).toMatchObject({ protected: true });
    expect((await api(app, 'POST', '/generations/20990101-000000-ffff/_protect')).statusCode).toBe(404);

    // The plugin's tables are only a cache: emptied and rebuilt from the repository, the mark is still there.
    await reg.container.resolve(POOL).query('DELETE FROM dp_generation');
    const sync = await api(app, 'POST', '/generations/_sync');
    expect((await tasks.whenDone(sync.json().task.id))?.status).toBe('SUCCEEDED');
    const rebuilt = (await api(app, 'GET', '/generations/_detailed')).json() as { id: string; protected: boolean }[];
    expect(rebuilt.filter((g) => g.protected).map((g) => g.id)).toEqual([target]);
    const repo = (await openLocation(repoDir))!;
    const stored = (await readGenerations(repo)).find((g) => g.record.id === target)!;
    await repo.close();
    expect(stored.record.protected).toBe(true);
    // One final record left: the older revision went once the new one was written.
    expect(stored.recordSnapshots.filter((s) => s.meta?.state === 'final')).toHaveLength(1);
    const audit = (await api(app, 'GET', '/audit?action=generation.protect')).json() as { items: { target: string }[] };
    expect(audit.items.map((e) => e.target)).toEqual([target]);

    const un = await api(app, 'POST', `/generations/${target}/_unprotect`);
    expect(un.statusCode).toBe(200);
    expect(un.json()).toMatchObject({ id: target, protected: false });
    expect(((await api(app, 'GET', `/generations/${target}`)).json() as { protected: boolean }).protected).toBe(false);
  });

  it('cancelling a run stops it after the current part; the generation is INVALID and says so', async () => {
    const { app, reg } = nodes[0];
    const tasks = reg.container.resolve(TaskRegistry);
    // pg_dump waits on a table lock, so the run is inside its first part when it is cancelled.
    const r = await withClient(f.sb.db, async (c) => {
      await c.query('BEGIN');
      await c.query('LOCK TABLE t_domain IN ACCESS EXCLUSIVE MODE');
      let task;
      try {
        task = (await api(app, 'POST', '/backups')).json().task as { id: string };
        let waiting = false;
        for (const end = Date.now() + 120_000; !waiting && Date.now() < end; ) {
          await c.query('SELECT pg_stat_clear_snapshot()');
          waiting = Boolean((await c.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock' AND datname = current_database()`)).rowCount);
          if (!waiting) await new Promise((res) => setTimeout(res, 50));
        }
        expect(waiting).toBe(true);
        expect((await api(app, 'POST', `/tasks/${task.id}/cancel`)).statusCode).toBeLessThan(300);
      } finally {
        await c.query('ROLLBACK');
      }
      return tasks.whenDone(task.id);
    });
    expect(r?.status).toBe('CANCELLED');
    const repo = (await openLocation(repoDir))!;
    const g = (await readGenerations(repo))[0];
    await repo.close();
    expect(g.record.status).toBe('INVALID');
    expect(g.record.messages).toContain('cancelled');
    expect(g.record.parts.filter((p) => p.messages.includes('not backed up: the run was cancelled')).length).toBeGreaterThan(0);
  });

  it('while a backup runs the list is served from the plugin\'s tables (no repository read per request); the first read after it catches up', async () => {
    const { app, reg } = nodes[0];
    const tasks = reg.container.resolve(TaskRegistry);
    const before = ((await api(app, 'GET', '/generations/_detailed')).json() as { id: string }[]).map((g) => g.id);
    // pg_dump waits on a table lock, so the run stays inside its first part while the list is read.
    const { task, other } = await withClient(f.sb.db, async (c) => {
      await c.query('BEGIN');
      await c.query('LOCK TABLE t_domain IN ACCESS EXCLUSIVE MODE');
      try {
        const task = (await api(app, 'POST', '/backups')).json().task as { id: string };
        let waiting = false;
        for (const end = Date.now() + 120_000; !waiting && Date.now() < end; ) {
          await c.query('SELECT pg_stat_clear_snapshot()');
          waiting = Boolean((await c.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock' AND datname = current_database()`)).rowCount);
          if (!waiting) await new Promise((res) => setTimeout(res, 50));
        }
        expect(waiting).toBe(true);
        // Another process writes a whole generation meanwhile (without the database part, which the lock holds).
        const repo = (await openLocation(repoDir))!;
        const other = await runGeneration({ repo, host: f.host, trigger: 'cli', productVersion: 'test-5.1', backupEmails: false, backupArchivedEmails: false, skippedTags: ['bm/pgsql'] });
        await repo.close();
        expect(other.generation.status).toBe('VALID');
        const during = (await api(app, 'GET', '/generations/_detailed')).json() as { id: string }[];
        expect(during.map((g) => g.id)).toEqual(before);
        return { task, other };
      } finally {
        await c.query('ROLLBACK');
      }
    });
    const done = await tasks.whenDone(task.id);
    expect(done?.status, done?.error ?? '').toBe('SUCCEEDED');
    const after = ((await api(app, 'GET', '/generations/_detailed')).json() as { id: string }[]).map((g) => g.id);
    expect(new Set(after)).toEqual(new Set([...before, other.generation.id, done?.result?.generationId as string]));
  });
});
