import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { cutsInto } from './chunker.js';
import type { ChunkerParams } from './format.js';

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
const workerSource = () => `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const zstd = require(workerData.zstdPath);
// The low-level binding compresses and decompresses into buffers we own: one allocation per batch,
// none per blob, so a worker's memory stays flat however many blobs go through it.
const binding = require(workerData.bindingPath);
const cctx = new binding.CCtx();
const dctx = new binding.DCtx();
let scratch = Buffer.allocUnsafe(1 << 20);
const C = fs.constants;
// Buffers are external memory, which V8 collects late: on a restore (packs in, files out) tens of MiB
// per worker pile up between collections, so restores collect every 32 MiB. Backups do not: there the
// collections cost more time than the memory is worth.
require('node:v8').setFlagsFromString('--expose-gc');
const collect = require('node:vm').runInNewContext('gc');
let sinceGc = 0;
function maybeGc(bytes) { sinceGc += bytes; if (sinceGc > 32 * 1024 * 1024) { sinceGc = 0; collect(); } }
// The memory of a buffer, to transfer: the buffer's own ArrayBuffer when it has one to itself, else a copy.
function transferable(buf) {
  return buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength ? buf.buffer : buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}
// Compresses one blob for a pack: zstd when it shrinks, else the raw bytes (copied unless the caller
// owns \`data\`: a window's chunks are views into a buffer the next window reuses).
function store(data, parts, lengths, flags, owned) {
  const bound = binding.compressBound(data.length);
  if (scratch.length < bound) scratch = Buffer.allocUnsafe(bound);
  const n = cctx.compress(scratch, data, workerData.level);
  if (n < data.length) { parts.push(Buffer.from(scratch.subarray(0, n))); lengths.push(n); flags.push(1); }
  else { parts.push(owned ? data : Buffer.from(data)); lengths.push(data.length); flags.push(0); }
}
function writeAll(fd, buf, at) {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, at + done);
}
function compress(job) {
  const input = Buffer.from(job.data);
  let bound = 0;
  for (const len of job.lengths) bound += binding.compressBound(len);
  const out = Buffer.allocUnsafeSlow(Math.max(bound, 1));
  const lengths = []; const flags = [];
  let off = 0; let o = 0;
  for (const len of job.lengths) {
    const blob = input.subarray(off, off + len); off += len;
    const n = len > 0 ? cctx.compress(out.subarray(o), blob, workerData.level) : len;
    if (n < len) { lengths.push(n); flags.push(1); o += n; }
    else { blob.copy(out, o); lengths.push(len); flags.push(0); o += len; }
  }
  parentPort.postMessage({ id: job.id, data: out.buffer, lengths, flags, errors: job.lengths.map(() => null) }, [out.buffer]);
}
function decompress(job) {
  const input = Buffer.from(job.data);
  const parts = []; const lengths = []; const flags = []; const errors = [];
  let off = 0;
  for (let i = 0; i < job.lengths.length; i++) {
    const blob = input.subarray(off, off + job.lengths[i]); off += job.lengths[i];
    if (job.flags[i] === 1) {
      try { const d = zstd.decompress(blob); parts.push(d); lengths.push(d.length); errors.push(null); }
      catch (e) { parts.push(Buffer.alloc(0)); lengths.push(0); errors.push(String(e && e.message || e)); }
    } else { parts.push(blob); lengths.push(blob.length); errors.push(null); }
    flags.push(0);
  }
  const ab = transferable(Buffer.concat(parts));
  parentPort.postMessage({ id: job.id, data: ab, lengths, flags, errors }, [ab]);
}
// Restore: decompress into the scratch buffer, verify against the id, write into the files that want
// the blob. Files are opened with O_NOFOLLOW: a symlink planted in the target is never followed.
function restore(job) {
  const input = Buffer.from(job.data);
  const byBlob = job.blobs.map(() => []);
  job.writes.forEach((w, i) => byBlob[w.blob].push(i));
  const blobErrors = []; const writeErrors = new Array(job.writes.length).fill(null);
  job.blobs.forEach((b, bi) => {
    const stored = input.subarray(b.off, b.off + b.len);
    let raw = stored; let err = null;
    if (b.zstd) {
      if (scratch.length < b.raw) scratch = Buffer.allocUnsafe(b.raw);
      try {
        const n = dctx.decompress(scratch.subarray(0, b.raw), stored);
        if (n !== b.raw) err = 'decompressed to ' + n + ' bytes, index says ' + b.raw;
        raw = scratch.subarray(0, n);
      } catch (e) { err = 'cannot decompress (' + (e && e.message || e) + ')'; }
    }
    if (!err && createHash('sha256').update(raw).digest('hex') !== b.id) err = 'content does not match its id';
    blobErrors.push(err);
    if (err) return;
    for (const i of byBlob[bi]) {
      const w = job.writes[i];
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
      } catch (e) {
        writeErrors[i] = String(e && e.message || e);
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
    }
  });
  parentPort.postMessage({ id: job.id, blobErrors, writeErrors });
}
// Small files read here, so that the main thread only walks the tree: read, hash, compress each one.
// A file that grew past job.max since it was stat'ed is left to the main thread (tooBig).
function files(job) {
  const parts = []; const lengths = []; const raws = []; const flags = []; const errors = []; const tooBig = [];
  const ids = Buffer.allocUnsafeSlow(32 * job.paths.length);
  job.paths.forEach((p, i) => {
    let data;
    try { data = fs.readFileSync(p); } catch (e) { errors.push((e && e.code ? e.code + ': ' : '') + String(e && e.message || e)); tooBig.push(false); lengths.push(0); raws.push(0); flags.push(0); return; }
    errors.push(null);
    if (data.length > job.max) { tooBig.push(true); lengths.push(0); raws.push(data.length); flags.push(0); return; }
    tooBig.push(false);
    raws.push(data.length);
    createHash('sha256').update(data).digest().copy(ids, 32 * i);
    if (data.length === 0) { lengths.push(0); flags.push(0); return; }
    store(data, parts, lengths, flags, true);
  });
  const ab = transferable(Buffer.concat(parts));
  parentPort.postMessage({ id: job.id, data: ab, ids: ids.buffer, lengths, raws, flags, errors, tooBig }, [ab, ids.buffer]);
}
// A window of a large file: read [start, start + window + max), cut it (same FastCDC as the main
// thread: the function's own source is injected below), and take the chunks that start inside the
// window; each has its whole lookahead, so its cut is final. The next window starts after them.
const gear = workerData.gear;
const cutsInto = ${cutsInto.toString()};
let windowBuf = Buffer.allocUnsafe(0);
function window(job) {
  const want = job.window + job.params.max;
  if (windowBuf.length < want) windowBuf = Buffer.allocUnsafe(want);
  let fd = -1; let n = 0;
  try {
    fd = fs.openSync(job.path, 'r');
    for (;;) { const r = fs.readSync(fd, windowBuf, n, want - n, job.start + n); if (r === 0) break; n += r; if (n === want) break; }
  } catch (e) {
    if (fd >= 0) fs.closeSync(fd);
    parentPort.postMessage({ id: job.id, error: (e && e.code ? e.code + ': ' : '') + String(e && e.message || e) });
    return;
  }
  fs.closeSync(fd);
  const eof = n < want;
  const data = windowBuf.subarray(0, n);
  const cuts = [];
  cutsInto(gear, data, job.params, cuts);
  const parts = []; const lengths = []; const raws = []; const flags = [];
  const idList = [];
  let start = 0;
  for (const cut of cuts) {
    if (!eof && start >= job.window) break;
    const chunk = data.subarray(start, cut);
    idList.push(createHash('sha256').update(chunk).digest());
    raws.push(chunk.length);
    store(chunk, parts, lengths, flags, false);
    start = cut;
  }
  const ab = transferable(Buffer.concat(parts));
  const idsAb = transferable(Buffer.concat(idList));
  parentPort.postMessage({ id: job.id, data: ab, ids: idsAb, lengths, raws, flags, errors: [], tooBig: [], next: job.start + start, eof: eof && start >= n }, [ab, idsAb]);
}
parentPort.on('message', (job) => {
  if (job.op === 'window') window(job);
  else if (job.op === 'files') files(job);
  else if (job.op === 'restore') { restore(job); maybeGc(job.bytes || 0); }
  else if (job.op === 'compress') compress(job);
  else decompress(job);
});
`;

/** One blob of a restore job: where its stored bytes are in the job's buffer, and its id to verify. */
export interface RestoreBlob {
  off: number;
  len: number;
  /** Bytes once decompressed (from the index). */
  raw: number;
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

export interface FilesResult {
  /** Per file: stored bytes (view into one buffer), id, raw size, zstd or raw, error, too big. */
  outputs: Buffer[];
  ids: Buffer;
  raws: number[];
  compressed: boolean[];
  errors: (string | null)[];
  tooBig: boolean[];
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

  constructor(level: number, gear: Int32Array, size = Math.max(1, Math.min(availableParallelism(), 8))) {
    const zstdPath = createRequire(import.meta.url).resolve('zstd-napi');
    const bindingPath = join(dirname(zstdPath), '..', 'binding.js');
    for (let i = 0; i < size; i++) {
      const w = new Worker(workerSource(), { eval: true, workerData: { zstdPath, bindingPath, level, gear } });
      w.unref();
      w.on('message', (m: Parameters<CodecPool['done']>[0]) => this.done(m));
      w.on('error', (err) => this.failAll(err));
      this.workers.push(w);
      this.load.push(0);
    }
  }

  /**
   * Blobs already laid end to end in `data` (the saver fills one batch buffer: no second copy); the
   * worker reads only `lengths` of it.
   */
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
  /**
   * Reads, hashes and compresses small files on a worker: the main thread only sends their paths.
   * `max` bounds what is taken as one blob (a file that grew past it since its stat is flagged).
   */
  /** One window of a large file, cut, hashed and compressed on a worker (see the worker's `window`). */
  fileWindow(path: string, start: number, window: number, params: ChunkerParams): Promise<FilesResult & { next: number; eof: boolean }> {
    return this.post(new Uint8Array(0), window, (id) => ({ id, op: 'window', path, start, window, params })) as Promise<FilesResult & { next: number; eof: boolean }>;
  }

  files(paths: string[], expectedBytes: number, max: number): Promise<FilesResult> {
    return this.post(new Uint8Array(0), expectedBytes, (id) => ({ id, op: 'files', paths, max })) as Promise<FilesResult>;
  }

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
      this.workers[w].postMessage({ ...message(id), data: payload, bytes: total }, [payload as ArrayBuffer]);
    }).finally(() => {
      this.load[w] -= total + 1;
      if (this.load[w] === 0) this.workers[w].unref();
    });
  }

  private done(m: { id: number; data: ArrayBuffer; ids?: ArrayBuffer | null; lengths: number[]; flags: number[]; errors: (string | null)[]; blobErrors?: (string | null)[]; writeErrors?: (string | null)[]; raws?: number[]; tooBig?: boolean[]; next?: number; eof?: boolean; error?: string }): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.error) {
      const err = new Error(m.error) as NodeJS.ErrnoException;
      err.code = m.error.split(':')[0];
      p.reject(err);
      return;
    }
    if (m.tooBig) {
      const outputs = split(m.data, m.lengths);
      (p.resolve as (r: FilesResult & { next?: number; eof?: boolean }) => void)({ outputs, ids: Buffer.from(m.ids!), raws: m.raws!, compressed: m.flags.map((f) => f === 1), errors: m.errors, tooBig: m.tooBig, next: m.next, eof: m.eof });
      return;
    }
    if (m.blobErrors) {
      (p.resolve as (r: RestoreResult) => void)({ blobErrors: m.blobErrors, writeErrors: m.writeErrors! });
      return;
    }
    const outputs = split(m.data, m.lengths);
    (p.resolve as (r: CodecResult) => void)({ outputs, compressed: m.flags.map((f) => f === 1), errors: m.errors });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/** Views of consecutive pieces of a worker's result buffer. */
function split(data: ArrayBuffer, lengths: number[]): Buffer[] {
  const buf = Buffer.from(data);
  const outputs: Buffer[] = [];
  let off = 0;
  for (const len of lengths) {
    outputs.push(buf.subarray(off, off + len));
    off += len;
  }
  return outputs;
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
