import 'reflect-metadata';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BackupRunner, Requester } from '../../server/dataprotect/services.js';
import { ClusterCoordinator } from '../../server/jobs/cluster.js';
import { BackupScheduler } from '../../server/jobs/scheduler.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from '../http/harness.js';

// The scheduler follows the configured backup time; what a run does is the runner's business.

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api?.close());

it('schedules the daily backup at the configured time and moves it when the settings change', async () => {
  const calls: { by: Requester; trigger: string }[] = [];
  const runner: BackupRunner = {
    start: async (by, trigger) => {
      calls.push({ by, trigger });
      throw new Error('not in this test');
    },
    startRecoveryPoint: async () => {
      throw new Error('not in this test');
    },
    applyRetention: async () => {
      throw new Error('not in this test');
    },
  };
  const lines: string[] = [];
  const cluster = new ClusterCoordinator(api.pool, 'node-a');
  const scheduler = new BackupScheduler(api.deps.settings, runner, cluster, { info: (m) => lines.push(m), error: (m) => lines.push(m) });
  await scheduler.start();
  try {
    expect(scheduler.backupTime).toBe('01:00');
    const next = scheduler.nextRun()!;
    expect([next.getHours(), next.getMinutes()]).toEqual([1, 0]);

    const s = await api.deps.settings.get();
    await api.deps.settings.update({ ...s, backupTime: '23:45' }, PRINCIPALS[KEYS.admin]);
    expect(scheduler.backupTime).toBe('23:45');
    const moved = scheduler.nextRun()!;
    expect([moved.getHours(), moved.getMinutes()]).toEqual([23, 45]);
    expect(moved.getTime()).toBeGreaterThan(Date.now());
    expect(lines).toContain('daily backup scheduled at 23:45');
    expect(calls).toEqual([]);
  } finally {
    await scheduler.stop();
  }
  expect(scheduler.nextRun()).toBeNull();
});

it('two nodes whose schedules fire at the same moment start one run; the next day runs again', async () => {
  let runs = 0;
  const runner: BackupRunner = {
    start: async (by) => {
      runs++;
      const task = await api.deps.tasks.start({ kind: 'backup', title: 'Backup', actor: { login: 'scheduler', uid: null } }, async () => ({}));
      expect(by).toEqual({ scheduler: true });
      return { task, alreadyRunning: false };
    },
    startRecoveryPoint: async () => {
      throw new Error('not in this test');
    },
    applyRetention: async () => {
      throw new Error('not in this test');
    },
  };
  const quiet = { info: () => {}, error: () => {} };
  const lines: string[] = [];
  const a = new BackupScheduler(api.deps.settings, runner, new ClusterCoordinator(api.pool, 'node-a'), quiet);
  const b = new BackupScheduler(api.deps.settings, runner, new ClusterCoordinator(api.pool, 'node-b'), {
    info: (m) => lines.push(m),
    error: (m) => lines.push(m),
  });
  const night = new Date(2031, 0, 15, 1, 0, 0);
  const results = await Promise.all([a.runScheduled(night), b.runScheduled(night)]);
  expect(results.sort()).toEqual(['claimed-elsewhere', 'started']);
  expect(runs).toBe(1);
  // Later the same day (the backup time moved): still no second scheduled run.
  expect(await a.runScheduled(new Date(2031, 0, 15, 23, 0, 0))).toBe('claimed-elsewhere');
  expect(await b.runScheduled(new Date(2031, 0, 16, 1, 0, 0))).toBe('started');
  expect(runs).toBe(2);
});

it('the cluster lock lets one node work at a time and is free again afterwards', async () => {
  const a = new ClusterCoordinator(api.pool, 'node-a');
  const b = new ClusterCoordinator(api.pool, 'node-b');
  let release!: () => void;
  let locked!: () => void;
  const holding = new Promise<void>((r) => (locked = r));
  const held = a.withLock('backup-run', () => new Promise<string>((r) => {
    release = () => r('done by a');
    locked();
  }));
  await holding; // A holds the lock (however long taking it took), then B tries

  expect(await b.withLock('backup-run', async () => 'done by b')).toEqual({ acquired: false });
  expect(await b.withLock('another-lock', async () => 'other work')).toEqual({ acquired: true, value: 'other work' });
  release();
  expect(await held).toEqual({ acquired: true, value: 'done by a' });
  expect(await b.withLock('backup-run', async () => 'done by b')).toEqual({ acquired: true, value: 'done by b' });
});
