import { describe, expect, test } from 'vitest';
import { TreeWindows } from '../../server/engine/tree-windows.js';

/** A pack of `size` bytes where byte i is i % 251, and the reads made of it. */
function fakePack(size: number) {
  const bytes = Buffer.from(Array.from({ length: size }, (_, i) => i % 251));
  const reads: [number, number][] = [];
  const read = async (_pack: string, offset: number, length: number) => {
    if (offset + length > size) throw new Error('past the end');
    reads.push([offset, length]);
    return bytes.subarray(offset, offset + length);
  };
  return { bytes, reads, read };
}

describe('tree windows', () => {
  test('a miss reads the window that ends with the tree; the trees before it come from that window', async () => {
    const p = fakePack(4 * 1024 * 1024);
    const w = new TreeWindows(p.read);
    const end = 3 * 1024 * 1024;
    expect(await w.blob('p', end - 100, 100)).toEqual(p.bytes.subarray(end - 100, end));
    expect(p.reads).toEqual([[end - 256 * 1024, 256 * 1024]]);
    // A tree written before it (below it in the snapshot): no read.
    expect(await w.blob('p', end - 200_000, 5000)).toEqual(p.bytes.subarray(end - 200_000, end - 195_000));
    expect(p.reads).toHaveLength(1);
    // A miss further down doubles the window, and never reads again what is already held.
    await w.blob('p', 1000, 50);
    expect(p.reads[1]).toEqual([1, 1049]);
    await w.blob('p', end + 1000, 10);
    expect(p.reads[2]).toEqual([end, 1010]);
  });

  test('a window that cannot be read gives null (the caller reads the blob alone), and holds at most the limit', async () => {
    const failing = new TreeWindows(async () => {
      throw new Error('damaged');
    });
    expect(await failing.blob('p', 10, 10)).toBeNull();
    const p = fakePack(1024 * 1024);
    const w = new TreeWindows(p.read, 300 * 1024);
    await w.blob('a', 600_000, 10);
    await w.blob('b', 600_000, 10);
    await w.blob('a', 599_000, 10);
    expect(p.reads).toHaveLength(3);
  });
});
