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
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const zstd = require(workerData.zstdPath);
const compressor = new zstd.Compressor();
compressor.setParameters({ compressionLevel: workerData.level });
const C = fs.constants;
function writeAll(fd, buf, at) {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, at + done);
}
// Restore: decompress, verify against the id, write into the files that want the blob. The files are
// opened with O_NOFOLLOW: a symlink planted in the target is never followed.
function restore(job) {
  const input = Buffer.from(job.data);
  const raws = []; const blobErrors = [];
  for (const b of job.blobs) {
    const stored = input.subarray(b.off, b.off + b.len);
    let raw = stored; let err = null;
    if (b.zstd) { try { raw = zstd.decompress(stored); } catch (e) { err = 'cannot decompress (' + (e && e.message || e) + ')'; } }
    if (!err && createHash('sha256').update(raw).digest('hex') !== b.id) err = 'content does not match its id';
    raws.push(err ? null : raw); blobErrors.push(err);
  }
  const writeErrors = [];
  for (const w of job.writes) {
    const raw = raws[w.blob];
    if (!raw) { writeErrors.push(null); continue; }
    let fd = -1;
    try {
      if (w.whole) {
        fd = fs.openSync(w.path, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o600);
        writeAll(fd, raw, 0);
        if (job.asRoot) fs.fchownSync(fd, w.uid, w.gid);
        fs.fchmodSync(fd, w.mode);
        fs.futimesSync(fd, w.mtime, w.mtime);
      } else {
        fd = fs.openSync(w.path, C.O_WRONLY | C.O_NOFOLLOW);
        writeAll(fd, raw, w.at);
      }
      writeErrors.push(null);
    } catch (e) {
      writeErrors.push(String(e && e.message || e));
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }
  parentPort.postMessage({ id: job.id, blobErrors, writeErrors });
}
parentPort.on('message', (job) => {
  if (job.op === 'restore') return restore(job);
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

/** One blob of a restore job: where its stored bytes are in the job's buffer, and its id to verify. */
export interface RestoreBlob {
  off: number;
  len: number;
  zstd: boolean;
  id: string;
}

/** One write of a restore job: a whole file (created, written, metadata set) or a piece at an offset. */
export interface RestoreWrite {
  blob: number;
  path: string;
  whole: boolean;
  at: number;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds, as utimes takes them. */
  mtime: number;
}

export interface RestoreResult {
  blobErrors: (string | null)[];
  writeErrors: (string | null)[];
}

interface Pending {
  resolve: (r: never) => void;
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
      w.on('message', (m: Parameters<CodecPool['done']>[0]) => this.done(m));
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

  /**
   * Decompresses, verifies and writes blobs straight into the restored files on a worker, so that file
   * writes (open, write, owner, mode, times, close: most of a restore of small files) use every core.
   * `data` is transferred: the caller must not use it afterwards.
   */
  restore(data: Buffer, blobs: RestoreBlob[], writes: RestoreWrite[], asRoot: boolean): Promise<RestoreResult> {
    return this.post(data, data.byteLength, (id) => ({ id, op: 'restore', blobs, writes, asRoot })) as Promise<RestoreResult>;
  }

  private run(op: 'compress' | 'decompress', data: Uint8Array, lengths: number[], flags: number[]): Promise<CodecResult> {
    return this.post(data, data.byteLength, (id) => ({ id, op, lengths, flags })) as Promise<CodecResult>;
  }

  private post(data: Uint8Array, total: number, message: (id: number) => Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('codec pool is closed'));
    let w = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i] < this.load[w]) w = i;
    const id = this.nextId++;
    this.load[w] += total + 1;
    return new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: never) => void, reject, worker: w });
      if (this.load[w] === total + 1) this.workers[w].ref();
      // Transfer when `data` owns its whole buffer; otherwise the structured clone copies it.
      const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      // (Buffer#slice is a view, not a copy: copy explicitly, never transfer a shared pool buffer.)
      const payload = owned ? data.buffer : new Uint8Array(data).buffer;
      this.workers[w].postMessage({ ...message(id), data: payload }, [payload as ArrayBuffer]);
    }).finally(() => {
      this.load[w] -= total + 1;
      if (this.load[w] === 0) this.workers[w].unref();
    });
  }

  private done(m: { id: number; data: ArrayBuffer; lengths: number[]; flags: number[]; errors: (string | null)[]; blobErrors?: (string | null)[]; writeErrors?: (string | null)[] }): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.blobErrors) {
      (p.resolve as (r: RestoreResult) => void)({ blobErrors: m.blobErrors, writeErrors: m.writeErrors! });
      return;
    }
    const buf = Buffer.from(m.data);
    const outputs: Buffer[] = [];
    let off = 0;
    for (const len of m.lengths) {
      outputs.push(buf.subarray(off, off + len));
      off += len;
    }
    (p.resolve as (r: CodecResult) => void)({ outputs, compressed: m.flags.map((f) => f === 1), errors: m.errors });
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
