import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { partsKept, type FileInfo, type FileType, type PartWriter, type Storage } from '../../server/engine/index.js';
import { readLocks, RepositoryLock } from '../../server/engine/lock.js';
import { MemoryStorage } from '../../server/storage/memory.js';
import { S3Storage } from '../../server/storage/s3.js';
import { startS3, type TestS3 } from './s3-server.js';

/**
 * A store whose listings lag: a file written less than `hideMs` ago is readable but not listed (as on a
 * store with eventually consistent listings). It says it lags by `listingLagMs`.
 */
class LaggingStorage implements Storage {
  readonly location = 'lagging:';
  private readonly inner = new MemoryStorage();
  private readonly written = new Map<string, number>();

  constructor(
    private readonly hideMs: number,
    readonly listingLagMs: number,
  ) {}

  async *list(type: FileType): AsyncIterable<FileInfo> {
    for await (const f of this.inner.list(type)) if (Date.now() - (this.written.get(`${type}/${f.name}`) ?? 0) >= this.hideMs) yield f;
  }
  read(type: FileType, name: string, offset?: number, length?: number): Promise<Buffer> {
    return this.inner.read(type, name, offset, length);
  }
  async write(type: FileType, name: string, data: Buffer | readonly Uint8Array[]): Promise<void> {
    await this.inner.write(type, name, data);
    if (!this.written.has(`${type}/${name}`)) this.written.set(`${type}/${name}`, Date.now());
  }
  writeParts(type: FileType): PartWriter {
    return partsKept((name, parts) => this.write(type, name, parts));
  }
  delete(type: FileType, name: string): Promise<void> {
    return this.inner.delete(type, name);
  }
  stat(type: FileType, name: string): Promise<FileInfo | null> {
    return this.inner.stat(type, name);
  }
}

/** Two processes locking exclusively at the same moment: how many got the lock. Releases what was taken. */
async function race(a: Storage, b: Storage): Promise<number> {
  const got = await Promise.allSettled([RepositoryLock.acquire(a, true, 'prune A'), RepositoryLock.acquire(b, true, 'prune B')]);
  const won = got.filter((g): g is PromiseFulfilledResult<RepositoryLock> => g.status === 'fulfilled');
  for (const w of won) await w.value.release();
  for (const g of got) if (g.status === 'rejected') expect(String(g.reason)).toMatch(/is locked exclusively by prune [AB]/);
  return won.length;
}

describe('locks on a store whose listings lag', () => {
  test('waiting out the lag before listing: two processes locking at once never both get an exclusive lock', async () => {
    const s = new LaggingStorage(150, 400);
    for (let round = 0; round < 4; round++) {
      expect(await race(s, s)).toBeLessThanOrEqual(1);
      for (const l of await readLocks(s)) await s.delete('lock', l.name);
    }
  });

  test('without the wait, both would (what the wait is for)', async () => {
    const s = new LaggingStorage(5_000, 0);
    expect(await race(s, s)).toBe(2);
  });
});

describe('locks on S3 (no atomic rename, no conditional write)', () => {
  let s3: TestS3;
  const opened: S3Storage[] = [];
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    for (const o of opened) o.close();
    await s3?.stop();
  });

  test('two clients locking exclusively at once: never both, and the loser names the holder', async () => {
    const location = s3.location();
    const open = (env: NodeJS.ProcessEnv = {}) => {
      const s = new S3Storage(location, { env: { ...s3.env, ...env } });
      opened.push(s);
      return s;
    };
    const [a, b] = [open(), open({ DP_S3_LISTING_LAG_MS: '50' })];
    expect(a.listingLagMs).toBe(0);
    expect(b.listingLagMs).toBe(50);
    for (let round = 0; round < 5; round++) expect(await race(a, b)).toBeLessThanOrEqual(1);
    expect(await readLocks(a)).toEqual([]);
    expect(() => open({ DP_S3_LISTING_LAG_MS: 'soon' })).toThrow(/invalid DP_S3_LISTING_LAG_MS "soon": expected milliseconds/);
  });
});
