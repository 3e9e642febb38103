import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGenerations, type GenerationRecord } from '../../server/dataprotect/generation/format.js';
import { setProtection } from '../../server/dataprotect/generation/protection.js';
import { checkRetentionPolicy, decideRetention, RetentionPolicyError } from '../../server/dataprotect/generation/retention.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { check, Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { seededHost, type BackupFixture } from './helpers.js';

let f: BackupFixture;
beforeAll(async () => {
  f = await seededHost('retention', 3);
});
afterAll(async () => {
  await f?.cleanup();
});

const at = (day: number, hour: number) => new Date(2026, 0, day, hour, 0, 0); // local time, as the schedule
const rec = (id: string, t: Date, status: GenerationRecord['status'] = 'VALID', protect = false) => ({ id, protectionTime: t.toISOString(), status, protected: protect }) as GenerationRecord;
const kept = (gens: GenerationRecord[], policy: Parameters<typeof decideRetention>[1], now: Date) => decideRetention(gens, policy, now).keep.map((k) => k.id);

describe('retention in days', () => {
  it('over generations spread on simulated days keeps the last 48 hours whole, then the newest of each day of the window, and the newest valid of a day whose newest failed', async () => {
    // The configuration parts only (fast), real backups, one generation per simulated night, and two extra runs.
    const opts = { repo: f.repo, trigger: 'schedule' as const, productVersion: 'test', backupEmails: false, backupArchivedEmails: false, skippedTags: ['bm/pgsql', 'filehosting/data'], retention: { days: 5 } };
    const broken = Object.create(f.host) as typeof f.host;
    broken.dataLocations = async (server, tag) => [{ server, tag, virtualPath: '/conf', fsPath: path.join(f.sb.root, 'gone') }];
    const made = new Map<string, string>();
    for (let day = 1; day <= 12; day++) {
      made.set(`d${day} 01:00`, (await runGeneration({ ...opts, host: f.host, time: at(day, 1) })).generation.id);
      if (day === 10) made.set('d10 15:00', (await runGeneration({ ...opts, host: f.host, trigger: 'api', time: at(10, 15) })).generation.id);
      if (day === 11) {
        const r = await runGeneration({ ...opts, host: broken, trigger: 'api', time: at(11, 18) });
        expect(r.runStatus).toBe('ERROR');
        made.set('d11 18:00', r.generation.id);
      }
    }
    const left = (await readGenerations(f.repo)).map((g) => g.record.id);
    // The last 48 hours whole (d10 01:00 is exactly 48 hours old: beyond), then one a day back to day 8.
    const expected = ['d12 01:00', 'd11 18:00', 'd11 01:00', 'd10 15:00', 'd9 01:00', 'd8 01:00'].map((k) => made.get(k));
    expect(left).toEqual(expected);
    // What was forgotten was pruned, and the repository is sound.
    const c = await check(f.repo, { readData: true });
    expect(c.errors).toEqual([]);
  });

  it('two backups on one day leave two generations; a protected one outlives the days that would delete it, also read back from the repository alone', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dp-repo-protect-'));
    const repo = await Repository.init(new LocalStorage(dir));
    try {
      const opts = { repo, host: f.host, productVersion: 'test', backupEmails: false, backupArchivedEmails: false, skippedTags: ['bm/pgsql', 'filehosting/data'], retention: { days: 3 } };
      const run = async (day: number, hour: number, trigger: 'schedule' | 'api' = 'schedule') => (await runGeneration({ ...opts, trigger, time: new Date(2026, 1, day, hour) })).generation.id;
      const nightly = await run(20, 1);
      const backupNow = await run(20, 14, 'api');
      expect((await readGenerations(repo)).map((g) => g.record.id)).toEqual([backupNow, nightly]);

      expect((await setProtection(repo, nightly, true)).changed).toBe(true);
      expect((await setProtection(repo, nightly, true)).changed).toBe(false);
      const later = [await run(21, 1), await run(22, 1), await run(23, 1), await run(24, 1)];
      // At 24 01:00: the 23rd and 24th (48 hours), the 22nd (3-day window); the 20th's Backup now and the 21st go.
      const reopened = await Repository.open(new LocalStorage(dir));
      try {
        const gens = await readGenerations(reopened);
        expect(gens.map((g) => g.record.id)).toEqual([later[3], later[2], later[1], nightly]);
        expect(gens.map((g) => g.record.protected === true)).toEqual([false, false, false, true]);
        expect((await check(reopened, { readData: true })).errors).toEqual([]);
      } finally {
        await reopened.close();
      }
      await setProtection(repo, nightly, false);
      const last = await run(25, 1);
      expect((await readGenerations(repo)).map((g) => g.record.id)).toEqual([last, later[3], later[2]]);
    } finally {
      await repo.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('never deletes the newest valid generation, however old; weekly and monthly keep one per period', () => {
    const now = at(30, 12);
    const gens = [rec('old-valid', at(2, 1)), rec('recent-bad', at(29, 1), 'INVALID'), rec('older-valid', at(1, 1))];
    const d = decideRetention(gens, { days: 3 }, now);
    expect(d.keep.map((k) => k.id)).toEqual(['recent-bad', 'old-valid']);
    expect(d.keep.find((k) => k.id === 'old-valid')?.reasons).toEqual(['newest valid generation']);
    expect(d.remove.map((r) => r.id)).toEqual(['older-valid']);

    // Daily from the 1st to the 60th day of 2026: 2 days, 2 ISO weeks, 2 months.
    const many = Array.from({ length: 60 }, (_, i) => rec(`g${i + 1}`, at(i + 1, 1)));
    const w = decideRetention(many, { days: 2, weekly: 2, monthly: 2 }, at(60, 12));
    // Days 60 (Mar 1, a Sunday) and 59; weeks: the newest of this ISO week (g60) and of the previous (Feb 22 = g53);
    // months: March (g60) and February (g59).
    expect(w.keep.map((k) => k.id)).toEqual(['g60', 'g59', 'g53']);
    expect(w.remove).toHaveLength(57);
    expect(() => decideRetention(many, { days: 0 }, now)).toThrow(RetentionPolicyError);
  });
});

describe('the retention policy', () => {
  const now = at(15, 12);

  it('keeps every generation of the last 48 hours, and thins older ones to one a day (the newest, and the newest valid)', () => {
    const gens = [
      rec('d15 08:00', at(15, 8)), rec('d15 07:59', new Date(2026, 0, 15, 7, 59)),
      rec('d13 13:00', at(13, 13)), rec('d13 12:30', new Date(2026, 0, 13, 12, 30)), // 47 and 47.5 hours old
      rec('d13 11:00', at(13, 11)), rec('d13 10:00', at(13, 10)), // 49 and 50 hours old, the same day
      rec('d12 20:00', at(12, 20), 'INVALID'), rec('d12 09:00', at(12, 9)), rec('d12 08:00', at(12, 8)),
    ];
    const d = decideRetention(gens, { days: 7 }, now);
    expect(d.keep.map((k) => k.id)).toEqual(['d15 08:00', 'd15 07:59', 'd13 13:00', 'd13 12:30', 'd12 20:00', 'd12 09:00']);
    expect(d.keep.find((k) => k.id === 'd13 12:30')?.reasons).toEqual(['within the last 48 hours']);
    expect(d.keep.find((k) => k.id === 'd12 09:00')?.reasons).toEqual(['daily 2026-01-12 (newest valid)']);
    expect(d.remove.map((r) => r.id)).toEqual(['d13 11:00', 'd13 10:00', 'd12 08:00']);
    // A one-day window still keeps the last 48 hours; beyond them, the newest valid generation only.
    expect(kept(gens, { days: 1 }, now)).toEqual(['d15 08:00', 'd15 07:59', 'd13 13:00', 'd13 12:30']);
  });

  it('two runs on the same day leave two generations, the next day too', () => {
    const today = [rec('nightly', at(15, 1)), rec('backup now', at(15, 11))];
    expect(kept(today, { days: 1 }, now)).toEqual(['backup now', 'nightly']);
    expect(kept(today, { days: 1 }, at(16, 1))).toEqual(['backup now', 'nightly']);
    // Two days later the day is thinned to its newest.
    expect(kept(today, { days: 7 }, at(17, 12))).toEqual(['backup now']);
  });

  it('keeps a protected generation whatever the policy, even an invalid one, and never the newest valid one', () => {
    const gens = [rec('recent', at(15, 1), 'INVALID'), rec('old-protected', at(1, 1), 'INVALID', true), rec('old-valid', at(2, 1)), rec('older', at(1, 2))];
    const d = decideRetention(gens, { days: 3 }, now);
    expect(d.keep.map((k) => k.id)).toEqual(['recent', 'old-valid', 'old-protected']);
    expect(d.keep.find((k) => k.id === 'old-protected')?.reasons).toEqual(['protected']);
    expect(d.remove.map((r) => r.id)).toEqual(['older']);
    expect(kept([rec('p', at(1, 1), 'VALID', true), rec('n', at(15, 1))], { days: 1, weekly: 0, monthly: 0 }, now)).toEqual(['n', 'p']);
  });

  it('weekly and monthly keep the newest valid generation of each period, else its newest', () => {
    // Nightly runs from January 1st to February 28th, the newest of each week INVALID.
    const many = Array.from({ length: 59 }, (_, i) => {
      const t = at(i + 1, 1);
      return rec(`g${i + 1}`, t, t.getDay() === 0 ? 'INVALID' : 'VALID');
    });
    // Feb 28 2026 is a Saturday: its week's newest (g59) is valid; the week before ends on Sunday Feb 22 (g53, INVALID).
    const w = decideRetention(many, { days: 1, weekly: 3 }, at(59, 12));
    expect(w.keep.map((k) => k.id)).toEqual(['g59', 'g58', 'g52', 'g45']);
    expect(w.keep.find((k) => k.id === 'g52')?.reasons).toEqual(['weekly 2026-W08']);
    const m = decideRetention(many, { days: 1, monthly: 5 }, at(59, 12));
    // Only two months have generations: February's newest and January's (Jan 31 is a Saturday: valid).
    expect(m.keep.map((k) => k.id)).toEqual(['g59', 'g58', 'g31']);
    expect(m.keep.find((k) => k.id === 'g31')?.reasons).toEqual(['monthly 2026-01']);
  });

  it('refuses a policy that cannot be applied, naming the setting', () => {
    const field = (p: Parameters<typeof checkRetentionPolicy>[0]) => {
      try {
        checkRetentionPolicy(p);
        return null;
      } catch (err) {
        return err instanceof RetentionPolicyError ? err.field : String(err);
      }
    };
    expect(field({ days: 7 })).toBeNull();
    expect(field({ days: 3650, weekly: 520, monthly: 240 })).toBeNull();
    expect(field({ days: 0 })).toBe('retentionDays');
    expect(field({ days: -2 })).toBe('retentionDays');
    expect(field({ days: 1.5 })).toBe('retentionDays');
    expect(field({ days: Number.NaN })).toBe('retentionDays');
    expect(field({ days: 3651 })).toBe('retentionDays');
    expect(field({ days: 7, weekly: -1 })).toBe('keepWeekly');
    expect(field({ days: 7, weekly: 2.5 })).toBe('keepWeekly');
    expect(field({ days: 7, monthly: 241 })).toBe('keepMonthly');
    expect(() => checkRetentionPolicy({ days: 0 })).toThrow(/whole number of days from 1 to 3650, got 0/);
  });
});
