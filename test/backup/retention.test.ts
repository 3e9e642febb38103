import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGenerations, type GenerationRecord } from '../../server/dataprotect/generation/format.js';
import { decideRetention } from '../../server/dataprotect/generation/retention.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { check } from '../../server/engine/index.js';
import { seededHost, type BackupFixture } from './helpers.js';

let f: BackupFixture;
beforeAll(async () => {
  f = await seededHost('retention', 3);
});
afterAll(async () => {
  await f?.cleanup();
});

const at = (day: number, hour: number) => new Date(2026, 0, day, hour, 0, 0); // local time, as the schedule
const rec = (id: string, t: Date, status: GenerationRecord['status'] = 'VALID') => ({ id, protectionTime: t.toISOString(), status }) as GenerationRecord;

describe('retention in days', () => {
  it('over generations spread on simulated days keeps exactly the newest of each of the last N days, and the newest valid of a day whose newest failed', async () => {
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
    const kept = (await readGenerations(f.repo)).map((g) => g.record.id);
    const expected = ['d12 01:00', 'd11 18:00', 'd11 01:00', 'd10 15:00', 'd9 01:00', 'd8 01:00'].map((k) => made.get(k));
    expect(kept).toEqual(expected);
    // What was forgotten was pruned, and the repository is sound.
    const c = await check(f.repo, { readData: true });
    expect(c.errors).toEqual([]);
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
    expect(() => decideRetention(many, { days: 0 }, now)).toThrow(/days/);
  });
});
