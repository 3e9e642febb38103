import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { BlobSaver } from '../../server/engine/saver.js';
import type { HashedFiles } from '../../server/engine/codec-pool.js';
import type { Repository } from '../../server/engine/repository.js';

/**
 * The saver's bound on file bytes read ahead (held on the workers between hashing and storing): a walk with
 * hundreds of files in flight asks for all of them at once, and the workers must still hold only about the
 * bound, whatever the number of callers let through together.
 */
describe('saver: file bytes held on the workers', () => {
  test('512 files asked for at once: never much more than 8 MiB held between their reading and their storing', async () => {
    let held = 0;
    let most = 0;
    const later = () => new Promise<void>((r) => setTimeout(r, 1));
    const pool = {
      size: 2,
      openSession: () => 1,
      closeSession: () => {},
      finishPacks: async () => {},
      async hashFiles(paths: string[], bytes: number): Promise<HashedFiles> {
        held += bytes;
        most = Math.max(most, held);
        await later();
        const ids = Buffer.concat(paths.map((p) => createHash('sha256').update(p).digest()));
        return { worker: 0, job: 1, ids, raws: paths.map(() => FILE), errors: paths.map(() => null), tooBig: paths.map(() => false), sizes: paths.map(() => FILE), pieces: paths.map(() => 1), bytes } as HashedFiles & { bytes: number };
      },
      async store(batch: HashedFiles & { bytes?: number }): Promise<void> {
        await later();
        held -= batch.bytes!;
      },
    };
    const repo = {
      config: { packSize: 16 << 20 },
      pruneMarks: new Map(),
      codec: () => pool,
      reusable: () => false,
      packBuilder: () => ({ blobCount: 0 }),
    } as unknown as Repository;
    const FILE = 100_000;
    const saver = new BlobSaver(repo);
    const params = { min: 512 * 1024, avg: 1 << 20, max: 8 << 20 };
    const saved = await Promise.all(Array.from({ length: 512 }, (_, i) => saver.saveFile(`/spool/m${i}`, FILE, params)));
    await saver.flush();
    expect(saved.every((s) => s.ids.length === 1 && s.size === FILE)).toBe(true);
    expect(held).toBe(0);
    // The bound, plus what one batch of files asked for as the bound was reached can add.
    expect(most).toBeLessThanOrEqual(8 * 1024 * 1024 + 2 * 1024 * 1024);
  });
});
