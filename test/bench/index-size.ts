/**
 * The blob index's memory per blob (`--index-blobs`, 10,000,000 by default): a child process (its own heap and
 * resident set) fills a `BlobIndex` with random 32-byte ids, a new pack every 2,000 blobs as a repository of small
 * mail has, checks a sample of them back, and reports `byteSize / size` and its resident-set growth per blob.
 * Target: at most 64 bytes per blob.
 */

import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { BlobIndex, BlobType } from '../../server/engine/blob-index.js';
import { atMost, informative, type BenchRow } from './table.js';
import { measure } from './tools.js';

const SELF = fileURLToPath(import.meta.url);
const ID_BYTES = 32;
const BLOBS_PER_PACK = 2000;

export interface IndexFill {
  blobs: number;
  byteSize: number;
  bytesPerBlob: number;
  rssBytesPerBlob: number;
  seconds: number;
}

export interface IndexSizeBench extends IndexFill {
  peakRssMiB: number;
  rows: BenchRow[];
}

/** In the child: fills the index and prints what it measured as JSON. */
function fill(blobs: number): IndexFill {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const rss0 = process.memoryUsage().rss;
  const started = process.hrtime.bigint();
  const index = new BlobIndex();
  const batch = 65536;
  const kept: Buffer[] = [];
  let pack = '';
  for (let done = 0; done < blobs; ) {
    const n = Math.min(batch, blobs - done);
    const ids = randomBytes(n * ID_BYTES);
    for (let i = 0; i < n; i++, done++) {
      if (done % BLOBS_PER_PACK === 0) pack = randomBytes(32).toString('hex');
      const id = ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
      index.add(id, { pack, type: BlobType.Data, zstd: true, offset: (done % BLOBS_PER_PACK) * 4096, length: 3000, rawLength: 4096 + (done % 7) });
      if (i % 10007 === 0) kept.push(Buffer.from(id));
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (index.size !== blobs) throw new Error(`the index holds ${index.size} blobs, ${blobs} were added`);
  for (const id of kept) if (index.get(id)?.length !== 3000) throw new Error('a blob added is not found back');
  gc?.();
  const rss = process.memoryUsage().rss - rss0;
  return { blobs, byteSize: index.byteSize, bytesPerBlob: index.byteSize / index.size, rssBytesPerBlob: rss / index.size, seconds };
}

export async function runIndexSizeBench(o: { blobs: number; log: (line: string) => void }): Promise<IndexSizeBench> {
  o.log(`index: ${o.blobs} random blob ids into a BlobIndex (child process)`);
  const m = await measure(process.execPath, ['--expose-gc', SELF, '--fill', String(o.blobs)]);
  const r = JSON.parse(m.stdout) as IndexFill;
  o.log(`index: ${r.bytesPerBlob.toFixed(1)} B per blob (byteSize), resident set +${r.rssBytesPerBlob.toFixed(1)} B per blob, filled in ${r.seconds.toFixed(1)} s`);
  const n = o.blobs.toLocaleString('en-US');
  return {
    ...r,
    peakRssMiB: m.maxRssMiB,
    rows: [
      { metric: `index bytes per blob at ${n} blobs (byteSize / size)`, unit: 'B', values: { ours: r.bytesPerBlob }, targets: [atMost(64, '<= 64 B')] },
      { metric: `index resident-set growth per blob at ${n} blobs`, unit: 'B', values: { ours: r.rssBytesPerBlob }, targets: [informative] },
    ],
  };
}

if (process.argv[1] === SELF && process.argv[2] === '--fill') {
  process.stdout.write(JSON.stringify(fill(Number(process.argv[3]))) + '\n');
}
