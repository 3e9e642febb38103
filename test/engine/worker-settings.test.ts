import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getPriority } from 'node:os';
import { describe, expect, test } from 'vitest';
import { gearTable } from '../../server/engine/chunker.js';
import { CodecPool, type BackupWork } from '../../server/engine/codec-pool.js';
import { DEFAULT_CONFIG } from '../../server/engine/format.js';
import { EngineError } from '../../server/engine/errors.js';
import { Repository } from '../../server/engine/repository.js';
import { defaultWorkers, workerSettings } from '../../server/engine/worker-settings.js';
import { MemoryStorage } from '../../server/storage/memory.js';

describe('backup worker settings (DP_BACKUP_NICE, DP_BACKUP_WORKERS)', () => {
  test('defaults: nice 10; all cores but one from 4 cores, every core below, at most 8', () => {
    expect(workerSettings({}, 2)).toEqual({ nice: 10, workers: 2 });
    expect([1, 2, 3, 4, 6, 8, 16, 64].map(defaultWorkers)).toEqual([1, 2, 3, 3, 5, 7, 8, 8]);
    expect(workerSettings({ DP_BACKUP_NICE: '', DP_BACKUP_WORKERS: ' ' }, 4)).toEqual({ nice: 10, workers: 3 });
  });

  test('values from the environment', () => {
    expect(workerSettings({ DP_BACKUP_NICE: '0', DP_BACKUP_WORKERS: '1' }, 8)).toEqual({ nice: 0, workers: 1 });
    expect(workerSettings({ DP_BACKUP_NICE: '19', DP_BACKUP_WORKERS: '12' }, 2)).toEqual({ nice: 19, workers: 12 });
  });

  test('a value out of range or not a whole number is refused, naming the variable and what to give', () => {
    for (const [name, value] of [['DP_BACKUP_NICE', '20'], ['DP_BACKUP_NICE', '-5'], ['DP_BACKUP_NICE', 'low'], ['DP_BACKUP_WORKERS', '0'], ['DP_BACKUP_WORKERS', '2.5'], ['DP_BACKUP_WORKERS', '65']]) {
      const attempt = () => workerSettings({ [name]: value }, 4);
      expect(attempt).toThrow(EngineError);
      expect(attempt).toThrow(new RegExp(`^${name}=${value.replace('.', '\\.')} is not valid: give a whole number`));
    }
  });
});

/** Nice value of every thread of this process (field 19 of /proc/self/task/<tid>/stat). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

/**
 * Starts every worker of the pool: jobs other than a backup's start another worker whenever every started one
 * is busy (a pack to verify that is not one: each is answered with a finding).
 */
async function startAll(pool: CodecPool): Promise<void> {
  const limits = { data: 1 << 20, overhead: 0 };
  await Promise.allSettled(Array.from({ length: pool.size }, () => pool.verifyPack('00', { data: Buffer.alloc(100) }, null, limits)));
}

describe('codec workers start as work comes', () => {
  test("a backup's work runs on one worker until it queues up past what a few changed files would", async () => {
    const pool = new CodecPool(3, gearTable(1), null, { workers: 2, nice: 0 });
    try {
      expect(pool.started).toBe(1);
      for (let i = 0; i < 3; i++) await pool.compressPacked(Buffer.alloc(100_000, i), [100_000]);
      await Promise.all([0, 1, 2].map((i) => pool.compressPacked(Buffer.alloc(100_000, i), [100_000])));
      expect(pool.started).toBe(1);
      // 40 MiB given and queued on the first worker: the next job starts the second.
      await Promise.all([0, 1].map((i) => pool.compressPacked(Buffer.alloc(40 << 20, i), [40 << 20])));
      expect(pool.started).toBe(2);
    } finally {
      await pool.close();
    }
  });

  test("a backup with a parent's reads count an eighth: a day's changes stay on one worker, a large change starts another", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dp-pace-'));
    const file = join(dir, 'm');
    writeFileSync(file, Buffer.alloc(1000, 7));
    const pool = new CodecPool(3, gearTable(1), null, { workers: 2, nice: 0 });
    const params = DEFAULT_CONFIG.chunkers.file;
    // Declared 40 MiB windows of a small file: what the pool counts is what it was given, not what was read.
    const windows = (n: number, work: BackupWork) => Promise.all(Array.from({ length: n }, () => pool.hashWindow(file, 0, 40 << 20, params, work)));
    try {
      // 160 MiB of changes queued at once: still one worker (a first backup's second starts past 32 MiB).
      const read = await windows(4, 'with-parent');
      expect(read.every((r) => r.eof && r.next === 1000)).toBe(true);
      expect(pool.started).toBe(1);
      // Past 256 MiB: the next one queued starts the second.
      await windows(4, 'with-parent');
      expect(pool.started).toBe(2);
    } finally {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('other work starts another worker whenever every started one is busy, up to the number set', async () => {
    const pool = new CodecPool(3, gearTable(1), null, { workers: 3, nice: 0 });
    try {
      const limits = { data: 1 << 20, overhead: 0 };
      await pool.verifyPack('00', { data: Buffer.alloc(100) }, null, limits);
      expect(pool.started).toBe(1);
      await Promise.all(Array.from({ length: 5 }, () => pool.verifyPack('00', { data: Buffer.alloc(100) }, null, limits)));
      expect(pool.started).toBe(3);
    } finally {
      await pool.close();
    }
  });
  test('a worker started after a dictionary was given has it too: its jobs compress with it', async () => {
    const pool = new CodecPool(3, gearTable(1), null, { workers: 2, nice: 0 });
    try {
      const rows = Buffer.from(Array.from({ length: 4_000 }, (_, i) => `${i}\tuser${i % 97}@acme.lan\tweekly meeting\tEurope/Paris\n`).join(''));
      const dictionary = 'ab'.repeat(32);
      pool.addDictionary(dictionary, rows);
      expect(pool.started).toBe(1);
      const row = rows.subarray(0, 4096);
      const plain = await pool.compressPacked(row, [row.length]);
      // 40 MiB given and queued on the first worker: the next job starts the second and runs there, with it.
      const [, late] = await Promise.all([pool.compressPacked(Buffer.alloc(40 << 20, 1), [40 << 20]), pool.compressPacked(row, [row.length], dictionary)]);
      expect(pool.started).toBe(2);
      expect(late.compressed[0]).toBe(true);
      expect(late.outputs[0].length).toBeLessThan(plain.outputs[0].length / 2);
    } finally {
      await pool.close();
    }
  });
});

describe.runIf(process.platform === 'linux')('effect on the codec workers (Linux: a nice value per thread)', () => {
  test('the pool starts DP_BACKUP_WORKERS workers, each at the nice value, and leaves the main thread alone', async () => {
    const own = getPriority();
    const nice = Math.min(19, own + 7);
    const before = threadNices().filter((n) => n === nice).length;
    const pool = new CodecPool(3, gearTable(1), null, { workers: 3, nice });
    try {
      expect(pool.size).toBe(3);
      // Once the jobs that start them are answered, every worker has run its start-up, which sets its priority.
      await startAll(pool);
      expect(pool.started).toBe(3);
      expect(threadNices().filter((n) => n === nice).length - before).toBe(3);
      expect(getPriority()).toBe(own);
    } finally {
      await pool.close();
    }
  });

  test("a restore's workers run at the process priority, a backup's at DP_BACKUP_NICE", async () => {
    const own = getPriority();
    const storage = new MemoryStorage();
    await (await Repository.init(storage)).close();
    for (const [use, nice] of [['restore', own], ['backup', Math.min(19, own + workerSettings().nice)]] as const) {
      const before = threadNices().filter((n) => n === nice).length;
      const repo = await Repository.open(storage, { codec: use });
      try {
        const pool = repo.codec();
        await startAll(pool);
        expect(threadNices().filter((n) => n === nice).length - before).toBe(pool.size);
      } finally {
        await repo.close();
      }
    }
  });

  test('nice 0 leaves the workers at the process priority', async () => {
    const own = getPriority();
    const before = threadNices().filter((n) => n !== own).length;
    const pool = new CodecPool(3, gearTable(1), null, { workers: 2, nice: 0 });
    try {
      await startAll(pool);
      expect(pool.started).toBe(2);
      expect(threadNices().filter((n) => n !== own).length).toBe(before);
    } finally {
      await pool.close();
    }
  });
});
