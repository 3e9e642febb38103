import 'reflect-metadata';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BackupRunner, Requester } from '../../server/dataprotect/services.js';
import { BackupScheduler } from '../../server/jobs/scheduler.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from '../http/harness.js';

// The scheduler follows the configured backup time; what a run does is the runner's business (issue 5).

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
    applyRetention: async () => {
      throw new Error('not in this test');
    },
  };
  const lines: string[] = [];
  const scheduler = new BackupScheduler(api.deps.settings, runner, { info: (m) => lines.push(m), error: (m) => lines.push(m) });
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
