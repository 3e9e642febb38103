import 'reflect-metadata';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Requester } from '../../server/dataprotect/services.js';
import { ClusterCoordinator } from '../../server/jobs/cluster.js';
import { cronTimer, rehearsalCron, RehearsalScheduler, type ArmTimer } from '../../server/jobs/scheduler.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from '../http/harness.js';

// The rehearsal schedule follows the settings (off until enabled, weekly on its day or daily, at its time) and
// starts the rehearsal when its timer fires. The timer is the test's own: ticks are fired by hand, so nothing
// waits for the clock; the settings are the real ones (PostgreSQL).

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api?.close());

/** A timer that records what was armed and fires when told. */
function fakeTimers() {
  const armed: { expression: string; tick: () => void; stopped: boolean }[] = [];
  const arm: ArmTimer = (expression, _name, tick) => {
    const t = { expression, tick, stopped: false };
    armed.push(t);
    return { nextRun: () => null, stop: () => void (t.stopped = true) };
  };
  return { armed, arm, live: () => armed.filter((t) => !t.stopped) };
}

async function save(change: Record<string, unknown>): Promise<void> {
  const s = await api.deps.settings.get();
  await api.deps.settings.update({ ...s, ...change }, PRINCIPALS[KEYS.admin]);
}

it('the cron expression of each schedule: weekly on its day, or daily, at its time', () => {
  expect(rehearsalCron({ rehearsalDay: 'sunday', rehearsalTime: '04:00' })).toBe('0 4 * * 0');
  expect(rehearsalCron({ rehearsalDay: 'wednesday', rehearsalTime: '05:30' })).toBe('30 5 * * 3');
  expect(rehearsalCron({ rehearsalDay: 'daily', rehearsalTime: '23:15' })).toBe('15 23 * * *');
  expect(() => rehearsalCron({ rehearsalDay: 'someday', rehearsalTime: '01:00' })).toThrow(/not a rehearsal schedule/);
});

it('is off by default, armed when enabled, re-armed when the day or time changes, stopped when disabled; a tick starts a rehearsal', async () => {
  const starts: Requester[] = [];
  const rehearsals = {
    start: async (by: { scheduler: true }) => {
      starts.push(by);
      const task = await api.deps.tasks.start({ kind: 'rehearsal', title: 'Rehearsal', actor: { login: 'scheduler', uid: null } }, async () => ({}));
      return { task, alreadyRunning: false };
    },
  };
  const lines: string[] = [];
  const timers = fakeTimers();
  const scheduler = new RehearsalScheduler(api.deps.settings, rehearsals, new ClusterCoordinator(api.pool, 'node-a'), { info: (m) => lines.push(m), error: (m) => lines.push(m) }, timers.arm);
  await scheduler.start();
  try {
    const defaults = await api.deps.settings.get();
    expect(defaults).toMatchObject({ rehearsalEnabled: false, rehearsalDay: 'sunday', rehearsalTime: '04:00' });
    expect(scheduler.expression).toBeNull();
    expect(timers.armed).toEqual([]);

    await save({ rehearsalEnabled: true });
    await eventually(() => scheduler.expression === '0 4 * * 0');
    expect(timers.live().map((t) => t.expression)).toEqual(['0 4 * * 0']);
    expect(lines).toContain('restore rehearsal scheduled every sunday at 04:00');

    await save({ rehearsalDay: 'daily', rehearsalTime: '23:15' });
    await eventually(() => scheduler.expression === '15 23 * * *');
    expect(timers.live().map((t) => t.expression)).toEqual(['15 23 * * *']);

    // The timer fires: the rehearsal starts, as the scheduler.
    timers.live()[0].tick();
    await eventually(() => starts.length === 1);
    expect(starts[0]).toEqual({ scheduler: true });

    // Another save that does not touch the rehearsal does not re-arm it.
    await save({ backupTime: '02:00' });
    expect(timers.armed.length).toBe(2);

    await save({ rehearsalEnabled: false });
    await eventually(() => scheduler.expression === null);
    expect(timers.live()).toEqual([]);
    expect(lines).toContain('restore rehearsal not scheduled (disabled)');
  } finally {
    await scheduler.stop();
    await save({ rehearsalEnabled: false, rehearsalDay: 'sunday', rehearsalTime: '04:00', backupTime: '01:00' });
  }
});

it('with node-cron, the next rehearsal is on its weekday at its time, in the server time zone', async () => {
  await save({ rehearsalEnabled: true, rehearsalDay: 'wednesday', rehearsalTime: '05:30' });
  const scheduler = new RehearsalScheduler(api.deps.settings, { start: async () => Promise.reject(new Error('not in this test')) }, new ClusterCoordinator(api.pool, 'node-a'), { info: () => {}, error: () => {} }, cronTimer);
  await scheduler.start();
  try {
    const next = scheduler.nextRun()!;
    expect([next.getDay(), next.getHours(), next.getMinutes()]).toEqual([3, 5, 30]);
    expect(next.getTime()).toBeGreaterThan(Date.now());
  } finally {
    await scheduler.stop();
    await save({ rehearsalEnabled: false, rehearsalDay: 'sunday', rehearsalTime: '04:00' });
  }
  expect(scheduler.nextRun()).toBeNull();
});

it('two nodes firing together start one scheduled rehearsal that day; a failing start is logged, not thrown', async () => {
  let runs = 0;
  const ok = {
    start: async () => {
      runs++;
      const task = await api.deps.tasks.start({ kind: 'rehearsal', title: 'Rehearsal', actor: { login: 'scheduler', uid: null } }, async () => ({}));
      return { task, alreadyRunning: false };
    },
  };
  const quiet = { info: () => {}, error: () => {} };
  const a = new RehearsalScheduler(api.deps.settings, ok, new ClusterCoordinator(api.pool, 'node-a'), quiet, fakeTimers().arm);
  const b = new RehearsalScheduler(api.deps.settings, ok, new ClusterCoordinator(api.pool, 'node-b'), quiet, fakeTimers().arm);
  const sunday = new Date(2031, 0, 19, 4, 0, 0);
  expect((await Promise.all([a.runScheduled(sunday), b.runScheduled(sunday)])).sort()).toEqual(['claimed-elsewhere', 'started']);
  expect(runs).toBe(1);

  const errors: string[] = [];
  const failing = new RehearsalScheduler(
    api.deps.settings,
    { start: async () => Promise.reject(new Error('no valid generation to rehearse')) },
    new ClusterCoordinator(api.pool, 'node-c'),
    { info: () => {}, error: (m) => errors.push(m) },
    fakeTimers().arm,
  );
  expect(await failing.runScheduled(new Date(2031, 0, 26, 4, 0, 0))).toBe('failed');
  expect(errors).toEqual(['scheduled rehearsal could not start: no valid generation to rehearse']);
});

/** Waits for a condition the settings' change listener makes true (it re-arms asynchronously). */
async function eventually(cond: () => boolean): Promise<void> {
  for (const end = Date.now() + 30_000; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}
