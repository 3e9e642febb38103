import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../../server/dataprotect/errors.js';
import type { GenerationRecord } from '../../server/dataprotect/generation/format.js';
import { decideRetention } from '../../server/dataprotect/generation/retention.js';
import { ClusterCoordinator } from '../../server/jobs/cluster.js';
import { RecoveryPointScheduler, slotOf, type ArmSlotTimer } from '../../server/jobs/recovery-point-scheduler.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from '../http/harness.js';

// The mail recovery-point schedule: off until enabled, every N minutes, re-armed when the settings change, one
// node per slot across the cluster (claims in PostgreSQL), a slot skipped while a backup runs. The timer and the
// clock are the test's own: ticks are fired by hand, nothing waits for wall time. Then the settings' bounds over
// HTTP and the retention of recovery points beside the nightly policy.

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api?.close());

/** A slot timer that records what was armed and fires when told. */
function fakeTimers() {
  const armed: { everyMs: number; tick: (slot: Date) => void; stopped: boolean }[] = [];
  const arm: ArmSlotTimer = (everyMs, tick) => {
    const t = { everyMs, tick, stopped: false };
    armed.push(t);
    return { stop: () => void (t.stopped = true) };
  };
  return { armed, arm, live: () => armed.filter((t) => !t.stopped) };
}

async function save(change: Record<string, unknown>): Promise<void> {
  const s = await api.deps.settings.get();
  await api.deps.settings.update({ ...s, ...change }, PRINCIPALS[KEYS.admin]);
}

/** A runner whose recovery points are recorded, with a backup running when the test says so. */
function fakeRunner(o: { backup?: () => boolean; refuse?: () => Error | null } = {}) {
  const starts: { scheduler: true }[] = [];
  return {
    starts,
    runner: {
      backupRunning: async () => o.backup?.() ?? false,
      startRecoveryPoint: async (by: { scheduler: true }) => {
        const err = o.refuse?.();
        if (err) throw err;
        starts.push(by);
        const task = await api.deps.tasks.start({ kind: 'recovery-point', title: 'Mail recovery point', actor: { login: 'scheduler', uid: null } }, async () => ({}));
        await api.deps.tasks.whenDone(task.id);
        return { task, alreadyRunning: false };
      },
    },
  };
}

const quiet = { info: () => {}, error: () => {} };

describe('schedule', () => {
  it('slots are multiples of the interval since the epoch: the same on every node', () => {
    const q = 15 * 60_000;
    expect(slotOf(new Date('2031-03-04T10:14:59.999Z'), q).toISOString()).toBe('2031-03-04T10:00:00.000Z');
    expect(slotOf(new Date('2031-03-04T10:15:00.000Z'), q).toISOString()).toBe('2031-03-04T10:15:00.000Z');
    expect(slotOf(new Date('2031-03-04T10:29:10.000Z'), q).toISOString()).toBe('2031-03-04T10:15:00.000Z');
  });

  it('is off by default, armed every N minutes when enabled, re-armed when N changes, stopped when disabled; a tick takes a recovery point', async () => {
    const { runner, starts } = fakeRunner();
    const lines: string[] = [];
    const timers = fakeTimers();
    let now = new Date('2031-03-04T10:07:00Z');
    const scheduler = new RecoveryPointScheduler(api.deps.settings, runner, new ClusterCoordinator(api.pool, 'node-a'), { info: (m) => lines.push(m), error: (m) => lines.push(m) }, timers.arm, () => now);
    await scheduler.start();
    try {
      expect(await api.deps.settings.get()).toMatchObject({ recoveryPointsEnabled: false, recoveryPointMinutes: 15, recoveryPointRetentionDays: 2 });
      expect(scheduler.minutes).toBeNull();
      expect(scheduler.nextRun()).toBeNull();
      expect(timers.armed).toEqual([]);

      await save({ recoveryPointsEnabled: true });
      expect(scheduler.minutes).toBe(15);
      expect(timers.live().map((t) => t.everyMs)).toEqual([15 * 60_000]);
      expect(scheduler.nextRun()?.toISOString()).toBe('2031-03-04T10:15:00.000Z');
      expect(lines).toContain('mail recovery points scheduled every 15 minutes');

      // The timer fires at 10:15: one recovery point, by the scheduler.
      now = new Date('2031-03-04T10:15:00Z');
      timers.live()[0].tick(now);
      await expect.poll(() => starts.length).toBe(1);
      expect(starts[0]).toEqual({ scheduler: true });
      expect(await scheduler.runScheduled(new Date('2031-03-04T10:30:00Z'))).toBe('started');
      expect(starts).toHaveLength(2);

      await save({ recoveryPointMinutes: 30 });
      expect(timers.live().map((t) => t.everyMs)).toEqual([30 * 60_000]);
      expect(timers.armed.filter((t) => t.stopped)).toHaveLength(1);
      // Saving other settings leaves the timer alone.
      await save({ retentionDays: 9 });
      expect(timers.armed).toHaveLength(2);

      await save({ recoveryPointsEnabled: false });
      expect(timers.live()).toEqual([]);
      expect(scheduler.nextRun()).toBeNull();
      expect(lines).toContain('mail recovery points not scheduled (disabled)');
    } finally {
      await scheduler.stop();
      await save({ recoveryPointsEnabled: false, recoveryPointMinutes: 15, retentionDays: 7 });
    }
  });

  it('two nodes whose timers fire for the same slot take one recovery point; the next slot runs again', async () => {
    await save({ recoveryPointsEnabled: true, recoveryPointMinutes: 15 });
    const { runner, starts } = fakeRunner();
    const lines: string[] = [];
    const a = new RecoveryPointScheduler(api.deps.settings, runner, new ClusterCoordinator(api.pool, 'node-a'), quiet, fakeTimers().arm);
    const b = new RecoveryPointScheduler(api.deps.settings, runner, new ClusterCoordinator(api.pool, 'node-b'), { info: (m) => lines.push(m), error: (m) => lines.push(m) }, fakeTimers().arm);
    await a.start();
    await b.start();
    try {
      // Both nodes' clocks a little apart, within the same quarter-hour.
      const outcomes = await Promise.all([a.runScheduled(new Date('2031-05-01T08:45:00.100Z')), b.runScheduled(new Date('2031-05-01T08:45:01.900Z'))]);
      expect([...outcomes].sort()).toEqual(['claimed-elsewhere', 'started']);
      expect(starts).toHaveLength(1);
      const claims = await api.pool.query<{ node: string }>(`SELECT node FROM dp_schedule_slot_claim WHERE job = 'recovery-point' AND slot = '2031-05-01T08:45:00Z'`);
      expect(claims.rows).toEqual([{ node: outcomes[0] === 'started' ? 'node-a' : 'node-b' }]);
      if (outcomes[1] === 'claimed-elsewhere') expect(lines).toContain('mail recovery point of 2031-05-01T08:45:00.000Z: already started by node-a, not starting another');
      // The next slot: one node takes it again.
      expect(await b.runScheduled(new Date('2031-05-01T09:00:00Z'))).toBe('started');
      expect(await a.runScheduled(new Date('2031-05-01T09:00:02Z'))).toBe('claimed-elsewhere');
      expect(starts).toHaveLength(2);
    } finally {
      await a.stop();
      await b.stop();
      await save({ recoveryPointsEnabled: false });
    }
  });

  it('a slot that falls while a backup runs is skipped without a claim; one that finds the lock busy is skipped too', async () => {
    await save({ recoveryPointsEnabled: true, recoveryPointMinutes: 15 });
    let backup = true;
    let refuse: Error | null = null;
    const { runner, starts } = fakeRunner({ backup: () => backup, refuse: () => refuse });
    const lines: string[] = [];
    const s = new RecoveryPointScheduler(api.deps.settings, runner, new ClusterCoordinator(api.pool, 'node-a'), { info: (m) => lines.push(m), error: (m) => lines.push(m) }, fakeTimers().arm);
    await s.start();
    try {
      expect(await s.runScheduled(new Date('2031-06-01T01:15:00Z'))).toBe('skipped-backup');
      expect(lines).toContain('mail recovery point of 2031-06-01T01:15:00.000Z: skipped, a backup is running');
      const claimed = await api.pool.query(`SELECT 1 FROM dp_schedule_slot_claim WHERE job = 'recovery-point' AND slot = '2031-06-01T01:15:00Z'`);
      expect(claimed.rowCount).toBe(0);
      backup = false;
      refuse = new ConflictError('cannot take a mail recovery point: Retention policy applied to the generations is running (task x); try again when it has finished');
      expect(await s.runScheduled(new Date('2031-06-01T01:30:00Z'))).toBe('skipped-busy');
      refuse = null;
      expect(await s.runScheduled(new Date('2031-06-01T01:45:00Z'))).toBe('started');
      expect(starts).toHaveLength(1);
    } finally {
      await s.stop();
      await save({ recoveryPointsEnabled: false });
    }
  });
});

describe('settings', () => {
  const put = (extra: string) =>
    api.app.inject({
      method: 'PUT', url: '/api/dataprotect/settings', headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'application/json' },
      payload: `{"retentionDays":7,"backupEmails":true,"backupArchivedEmails":false,"backupTime":"01:00","repositoryLocation":"/var/backups/bluemind/dp","skippedTags":[]${extra}}`,
    });

  for (const [field, value] of [
    ['recoveryPointMinutes', '4'], ['recoveryPointMinutes', '721'], ['recoveryPointMinutes', '1e3'], ['recoveryPointMinutes', '15.0'],
    ['recoveryPointRetentionDays', '0'], ['recoveryPointRetentionDays', '31'], ['recoveryPointRetentionDays', '2E0'], ['recoveryPointsEnabled', '"yes"'],
  ] as const) {
    it(`${field} ${value} is a 400 naming the field`, async () => {
      const r = await put(`,"${field}":${value}`);
      expect(r.statusCode).toBe(400);
      expect(r.json().errors.map((e: { field: string }) => e.field)).toEqual([`body.${field}`]);
    });
  }

  it('the bounds are saved and read back; left out, they are unchanged', async () => {
    const r = await put(',"recoveryPointsEnabled":true,"recoveryPointMinutes":5,"recoveryPointRetentionDays":30');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ recoveryPointsEnabled: true, recoveryPointMinutes: 5, recoveryPointRetentionDays: 30 });
    const again = await put('');
    expect(again.json()).toMatchObject({ recoveryPointsEnabled: true, recoveryPointMinutes: 5, recoveryPointRetentionDays: 30 });
    expect((await put(',"recoveryPointsEnabled":false,"recoveryPointMinutes":720,"recoveryPointRetentionDays":1')).json()).toMatchObject({ recoveryPointMinutes: 720, recoveryPointRetentionDays: 1 });
  });
});

describe('retention of recovery points', () => {
  const gen = (id: string, time: string, trigger: GenerationRecord['trigger'] = 'schedule', extra: Partial<GenerationRecord> = {}): GenerationRecord => ({
    kind: 'bm-dataprotect/generation', formatVersion: 1, id, protectionTime: time, end: time, state: 'final', status: 'VALID', runStatus: 'OK',
    trigger, productVersion: 't', program: 't', repositoryFormat: 2, parts: [], messages: [], ...extra,
  });
  const now = new Date('2031-01-20T12:00:00Z');
  const nightly = [
    gen('n20', '2031-01-20T01:00:00Z'), gen('n19', '2031-01-19T01:00:00Z'), gen('n18', '2031-01-18T01:00:00Z'),
    gen('n17', '2031-01-17T01:00:00Z'), gen('n10', '2031-01-10T01:00:00Z'),
  ];
  // Every quarter-hour for four days, newest first.
  const points: GenerationRecord[] = [];
  for (let t = Date.parse('2031-01-20T11:45:00Z'); t > Date.parse('2031-01-16T12:00:00Z'); t -= 15 * 60_000) {
    points.push(gen(`rp-${new Date(t).toISOString()}`, new Date(t).toISOString(), 'recovery-point'));
  }

  it('keeps recovery points of the last N days (24-hour periods) and deletes the older ones', () => {
    const d = decideRetention([...nightly, ...points], { days: 3, recoveryPointDays: 2 }, now);
    const kept = new Set(d.keep.map((k) => k.id));
    const since = now.getTime() - 2 * 86_400_000;
    for (const p of points) expect(kept.has(p.id), p.id).toBe(Date.parse(p.protectionTime) > since);
    expect(points.filter((p) => kept.has(p.id))).toHaveLength(2 * 24 * 4 - 1);
    expect(d.keep.find((k) => k.id === points[0].id)?.reasons).toEqual(['recovery point of the last 2 days']);
  });

  it('never disturbs the nightly policy: the same nightly generations are kept with the same reasons, with or without recovery points', () => {
    for (const policy of [{ days: 1 }, { days: 3 }, { days: 2, weekly: 2 }, { days: 1, monthly: 1 }]) {
      const alone = decideRetention(nightly, policy, now);
      const mixed = decideRetention([...nightly, ...points], { ...policy, recoveryPointDays: 1 }, now);
      expect(mixed.keep.filter((k) => !k.id.startsWith('rp-')), JSON.stringify(policy)).toEqual(alone.keep);
      expect(mixed.remove.filter((k) => !k.id.startsWith('rp-'))).toEqual(alone.remove);
    }
    // The 48-hour window and "newest valid" are the nightly generations' own: a newer recovery point takes neither.
    const d = decideRetention([...nightly, ...points], { days: 1 }, now);
    expect(d.keep.find((k) => k.id === 'n20')?.reasons).toEqual(expect.arrayContaining(['newest valid generation', 'daily 2031-01-20']));
    expect(d.keep.find((k) => k.id === 'n19')?.reasons).toEqual(['within the last 48 hours']);
    expect(d.remove.map((r) => r.id)).toEqual(expect.arrayContaining(['n17', 'n10']));
  });

  it('a protected recovery point is kept past its days; a policy outside the bounds is refused', () => {
    const old = gen('rp-old', '2031-01-01T10:15:00Z', 'recovery-point', { protected: true });
    const d = decideRetention([...nightly, old], { days: 3, recoveryPointDays: 2 }, now);
    expect(d.keep.find((k) => k.id === 'rp-old')?.reasons).toEqual(['protected']);
    expect(() => decideRetention(nightly, { days: 3, recoveryPointDays: 31 }, now)).toThrow(/recoveryPointRetentionDays: must be a whole number of days from 1 to 30/);
  });
});
