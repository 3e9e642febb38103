import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * zstd on worker threads, so that compression (the costliest step of a backup) and decompression
 * (of a restore) run on every core while the main thread reads, chunks and hashes.
 * Work goes in batches: one message carries many small blobs (most mail messages are a few KiB).
 */

export interface CodecResult {
  /** Stored bytes of each blob, as views into one buffer. */
  outputs: Buffer[];
  /** For compression: whether each output is zstd (false: stored raw because it did not shrink). */
  compressed: boolean[];
  /** For decompression: per-blob error message, when the stored bytes are damaged. */
  errors: (string | null)[];
}

// The worker is plain CommonJS evaluated from a string: it then runs the same way from TypeScript
// sources (tests) and from dist/ (the CLI), with no second build output to keep in sync.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zstd = require(workerData.zstdPath);
const compressor = new zstd.Compressor();
compressor.setParameters({ compressionLevel: workerData.level });
parentPort.on('message', (job) => {
  const input = Buffer.from(job.data);
  const parts = []; const lengths = []; const flags = []; const errors = [];
  let off = 0;
  for (let i = 0; i < job.lengths.length; i++) {
    const blob = input.subarray(off, off + job.lengths[i]); off += job.lengths[i];
    if (job.op === 'compress') {
      const c = compressor.compress(blob);
      if (c.length < blob.length) { parts.push(c); lengths.push(c.length); flags.push(1); }
      else { parts.push(blob); lengths.push(blob.length); flags.push(0); }
      errors.push(null);
    } else if (job.flags[i] === 1) {
      try { const d = zstd.decompress(blob); parts.push(d); lengths.push(d.length); errors.push(null); }
      catch (e) { parts.push(Buffer.alloc(0)); lengths.push(0); errors.push(String(e && e.message || e)); }
      flags.push(0);
    } else { parts.push(blob); lengths.push(blob.length); flags.push(0); errors.push(null); }
  }
  const out = Buffer.concat(parts);
  // Hand the memory over instead of copying it when the buffer owns its ArrayBuffer (not pooled).
  const ab = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out.buffer : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
  parentPort.postMessage({ id: job.id, data: ab, lengths, flags, errors }, [ab]);
});
`;

interface Pending {
  resolve: (r: CodecResult) => void;
  reject: (e: Error) => void;
}

export class CodecPool {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending & { worker: number }>();
  private nextId = 1;
  private closed = false;

  constructor(level: number, size = Math.max(1, Math.min(availableParallelism(), 8))) {
    const zstdPath = createRequire(import.meta.url).resolve('zstd-napi');
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { zstdPath, level } });
      w.unref();
      w.on('message', (m: { id: number; data: ArrayBuffer; lengths: number[]; flags: number[]; errors: (string | null)[] }) => this.done(m));
      w.on('error', (err) => this.failAll(err));
      this.workers.push(w);
      this.load.push(0);
    }
  }

  compress(blobs: readonly Uint8Array[]): Promise<CodecResult> {
    return this.run('compress', concat(blobs), blobs.map((b) => b.byteLength), []);
  }

  /** Blobs already laid end to end in `data` (the saver fills one batch buffer: no second copy). */
  compressPacked(data: Uint8Array, lengths: number[]): Promise<CodecResult> {
    return this.run('compress', data, lengths, []);
  }

  /** `zstd[i]` says whether blob i is zstd-compressed (else it is returned as is). */
  decompress(blobs: readonly Uint8Array[], zstd: readonly boolean[]): Promise<CodecResult> {
    return this.run('decompress', concat(blobs), blobs.map((b) => b.byteLength), zstd.map((z) => (z ? 1 : 0)));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private run(op: 'compress' | 'decompress', data: Uint8Array, lengths: number[], flags: number[]): Promise<CodecResult> {
    if (this.closed) return Promise.reject(new Error('codec pool is closed'));
    const total = data.byteLength;
    let w = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i] < this.load[w]) w = i;
    const id = this.nextId++;
    this.load[w] += total + 1;
    return new Promise<CodecResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: w });
      if (this.load[w] === total + 1) this.workers[w].ref();
      // Transfer when `data` owns its whole buffer; otherwise the structured clone copies it.
      const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      const payload = owned ? data.buffer : data.slice().buffer;
      this.workers[w].postMessage({ id, op, data: payload, lengths, flags }, [payload as ArrayBuffer]);
    }).finally(() => {
      this.load[w] -= total + 1;
      if (this.load[w] === 0) this.workers[w].unref();
    });
  }

  private done(m: { id: number; data: ArrayBuffer; lengths: number[]; flags: number[]; errors: (string | null)[] }): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    const buf = Buffer.from(m.data);
    const outputs: Buffer[] = [];
    let off = 0;
    for (const len of m.lengths) {
      outputs.push(buf.subarray(off, off + len));
      off += len;
    }
    p.resolve({ outputs, compressed: m.flags.map((f) => f === 1), errors: m.errors });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

function concat(blobs: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const b of blobs) total += b.byteLength;
  const data = new Uint8Array(total);
  let off = 0;
  for (const b of blobs) {
    data.set(b, off);
    off += b.byteLength;
  }
  return data;
}
