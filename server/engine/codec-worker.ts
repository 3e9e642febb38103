/**
 * A worker thread of the codec pool (codec-pool.ts): compression, decompression, reading small files,
 * cutting windows of large ones, and writing restored files, each job one message. In an encrypted
 * repository it also seals what it compressed and opens what it decompresses, and keys blob ids.
 */
import fs from 'node:fs';
import { setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import binding from 'zstd-napi/binding.js';
import { cutsInto, fileCuts } from './chunker.js';
import type { RestoreBlob, RestoreWrite } from './codec-pool.js';
import { blobIdOf, RepositoryCipher, SEAL_OVERHEAD, seal, sealInto, tryOpen } from './crypto.js';
import type { ChunkerParams } from './format.js';
import { PackFile, packFindings, packInMemory } from './pack-check.js';
import type { PackEntry } from './pack.js';
import { RestoreTarget } from './restore-target.js';
import { decompressBounded, type BlobLimits } from './validate.js';

interface Job {
  id: number;
  op: 'compress' | 'verifyPack' | 'files' | 'window' | 'restore';
  data: ArrayBuffer;
  bytes: number;
  lengths: number[];
  flags: number[];
  raws: number[];
  indexedBlobs: number | null;
  name: string;
  file: string | null;
  limits: BlobLimits;
  paths: string[];
  max: number;
  path: string;
  start: number;
  length: number;
  window: number;
  params: ChunkerParams;
  blobs: RestoreBlob[];
  writes: RestoreWrite[];
  target: string;
  asRoot: boolean;
}

const port = parentPort!;
const { level, gear, key, nice } = workerData as { level: number; gear: Int32Array; key: { encrypt: Uint8Array; id: Uint8Array } | null; nice?: number };
// Low CPU priority for this thread only: on Linux a nice value is per thread (setpriority of "0" is the
// calling thread), so the server's main thread keeps answering at its own. Elsewhere it would renice the
// whole process, the server with it: left alone there.
if (nice && process.platform === 'linux') {
  try {
    setPriority(nice);
  } catch {
    // A container that forbids it: the worker runs at the process's priority.
  }
}
const encryptKey = key ? Buffer.from(key.encrypt) : null;
const idKey = key ? Buffer.from(key.id) : null;
const cipher = encryptKey && idKey ? new RepositoryCipher({ encrypt: encryptKey, id: idKey }) : null;
const blobId = (data: Uint8Array): Buffer => blobIdOf(idKey, data);
/** Stored bytes once decrypted, or null when they do not authenticate (plain repository: as they are). */
const unseal = (stored: Buffer): Buffer | null => (encryptKey ? tryOpen(encryptKey, stored) : stored);
const NOT_DECRYPTED = 'cannot be decrypted (damaged or altered: its authentication tag does not match)';
// The low-level binding compresses and decompresses into buffers we own: one allocation per batch,
// none per blob, so a worker's memory stays flat however many blobs go through it.
const cctx = new binding.CCtx();
const dctx = new binding.DCtx();
let scratch = Buffer.allocUnsafe(1 << 20);
/** How much of a local pack `check --read-data` reads at once. */
const PACK_WINDOW = 1 << 20;

// Buffers are external memory, which V8 collects late: on a restore or a check (packs in) tens of MiB
// per worker pile up between collections, so these collect every 8 MiB let go of. Backups do not: there the
// collections cost more time than the memory is worth.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
let sinceGc = 0;
/**
 * Bytes of buffers that a restore or a check let go of for bigger ones since the last collection: as
 * garbage as a transferred pack, and counted with them.
 */
let dropped = 0;
function replaced(old: Buffer, size: number): ReturnType<typeof Buffer.allocUnsafe> {
  dropped += old.length;
  return Buffer.allocUnsafe(size);
}

function maybeGc(bytes: number, every = 32 * 1024 * 1024): void {
  sinceGc += bytes;
  if (sinceGc > every) {
    sinceGc = 0;
    collect();
  }
}

const message = (e: unknown): string => String((e as Error | undefined)?.message || e);
const withCode = (e: unknown): string => ((e as NodeJS.ErrnoException)?.code ? `${(e as NodeJS.ErrnoException).code}: ` : '') + message(e);

/** The memory of a buffer, to transfer: the buffer's own ArrayBuffer when it has one to itself, else a copy. */
function transferable(buf: Buffer): ArrayBuffer {
  const ab = buf.buffer as ArrayBuffer;
  return buf.byteOffset === 0 && buf.byteLength === ab.byteLength ? ab : ab.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

/**
 * Compresses one blob for a pack: zstd when it shrinks, else the raw bytes (copied unless the caller
 * owns `data`: a window's chunks are views into a buffer the next window reuses).
 */
function store(data: Buffer, parts: Buffer[], lengths: number[], flags: number[], owned: boolean): void {
  const bound = binding.compressBound(data.length);
  if (scratch.length < bound) scratch = Buffer.allocUnsafe(bound);
  const n = cctx.compress(scratch, data, level);
  const zstd = n < data.length;
  const payload = zstd ? scratch.subarray(0, n) : data;
  const stored = encryptKey ? seal(encryptKey, payload) : zstd ? Buffer.from(payload) : owned ? data : Buffer.from(data);
  parts.push(stored);
  lengths.push(stored.length);
  flags.push(zstd ? 1 : 0);
}

/** Fills `into` from `path` at `position`; a file shorter than that is an error, as the storage's read says. */
function readRange(path: string, into: Buffer, position: number): void {
  const fd = fs.openSync(path, 'r');
  try {
    for (let done = 0; done < into.length; ) {
      const n = fs.readSync(fd, into, done, into.length - done, position + done);
      if (n === 0) throw new Error(`reading data ${path.split('/').pop()!.slice(0, 12)}: truncated (wanted ${position}+${into.length})`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, buf: Buffer, at: number): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, at + done);
}

function compress(job: Job): void {
  const input = Buffer.from(job.data);
  let bound = 0;
  for (const len of job.lengths) bound += binding.compressBound(len) + (encryptKey ? SEAL_OVERHEAD : 0);
  const out = Buffer.allocUnsafeSlow(Math.max(bound, 1));
  const lengths: number[] = [];
  const flags: number[] = [];
  let off = 0;
  let o = 0;
  for (const len of job.lengths) {
    const blob = input.subarray(off, off + len);
    off += len;
    if (encryptKey) {
      // Compressed into the scratch buffer, then sealed into the output: one pass over each.
      const bound1 = binding.compressBound(len);
      if (scratch.length < bound1) scratch = Buffer.allocUnsafe(bound1);
      const n = len > 0 ? cctx.compress(scratch, blob, level) : len;
      const zstd = n < len;
      const sealed = sealInto(encryptKey, zstd ? scratch.subarray(0, n) : blob, out, o);
      lengths.push(sealed);
      flags.push(zstd ? 1 : 0);
      o += sealed;
      continue;
    }
    const n = len > 0 ? cctx.compress(out.subarray(o), blob, level) : len;
    if (n < len) {
      lengths.push(n);
      flags.push(1);
      o += n;
    } else {
      blob.copy(out, o);
      lengths.push(len);
      flags.push(0);
      o += len;
    }
  }
  const ab = out.buffer as ArrayBuffer;
  port.postMessage({ id: job.id, data: ab, lengths, flags, errors: job.lengths.map(() => null) }, [ab]);
}

/** A stored blob's verdict: opened, decompressed (into the scratch buffer, no further than its declared size) and hashed against its id. */
function blobVerdict(sealed: Buffer, zstd: boolean, rawLength: number, id: Uint8Array): string | null {
  const stored = unseal(sealed);
  if (!stored) return NOT_DECRYPTED;
  let raw: Buffer = stored;
  if (zstd) {
    if (scratch.length < rawLength) scratch = replaced(scratch, rawLength);
    try {
      raw = decompressBounded(dctx, stored, rawLength, scratch);
    } catch (e) {
      return `cannot decompress (${message(e)})`;
    }
  }
  return blobId(raw).equals(id) ? null : 'content does not match its id';
}

/**
 * One pack for `check --read-data`: its hash, header and every blob verified here; only the findings go
 * back. A pack on a local disk is read here through a window kept from pack to pack, never whole; one
 * from elsewhere comes whole, transferred.
 */
let packWindow: Buffer = Buffer.allocUnsafe(0);
function verifyPack(job: Job): void {
  const verdict = (stored: Buffer, e: PackEntry) => blobVerdict(stored, e.zstd, e.rawLength, e.id);
  if (!job.file) {
    port.postMessage({ id: job.id, found: packFindings(job.name, packInMemory(Buffer.from(job.data)), job.indexedBlobs, job.limits, cipher, verdict) });
    return;
  }
  if (packWindow.length === 0) packWindow = Buffer.allocUnsafe(PACK_WINDOW);
  let source: PackFile;
  try {
    source = new PackFile(job.file, packWindow);
  } catch (e) {
    port.postMessage({ id: job.id, error: message(e) });
    return;
  }
  try {
    const found = packFindings(job.name, source, job.indexedBlobs, job.limits, cipher, verdict);
    port.postMessage({ id: job.id, found });
  } catch (e) {
    port.postMessage({ id: job.id, error: message(e) });
  } finally {
    source.close();
    // A window grown for a large blob is not kept: the next pack starts small again.
    if (source.window.length > PACK_WINDOW) dropped += source.window.length;
    packWindow = source.window.length > PACK_WINDOW ? Buffer.allocUnsafe(0) : source.window;
  }
}

/**
 * Restore: decompress into the scratch buffer, verify against the id, write into the files that want
 * the blob. Files are created and opened through RestoreTarget, as in the main thread: no symlink on
 * the way is followed.
 */
let segment: Buffer = Buffer.allocUnsafe(0);
/** The most a worker keeps between restore jobs: a restore from a local disk reads at most 2 MiB at once. */
const SEGMENT_KEPT = 2 * 1024 * 1024;
function restore(job: Job): void {
  const target = RestoreTarget.at(job.target);
  let input: Buffer;
  if (job.file) {
    // A range of a local pack, read here into a buffer kept from job to job: nothing crosses threads.
    if (segment.length < job.length) segment = replaced(segment, job.length);
    input = segment.subarray(0, job.length);
    try {
      readRange(job.file, input, job.start);
    } catch (e) {
      port.postMessage({ id: job.id, readError: message(e) });
      return;
    }
  } else input = Buffer.from(job.data);
  const byBlob: number[][] = job.blobs.map(() => []);
  job.writes.forEach((w, i) => byBlob[w.blob].push(i));
  const blobErrors: (string | null)[] = [];
  const writeErrors: (string | null)[] = new Array(job.writes.length).fill(null);
  job.blobs.forEach((b, bi) => {
    const stored = unseal(input.subarray(b.off, b.off + b.len));
    let raw: Buffer = stored ?? Buffer.alloc(0);
    let err: string | null = stored ? null : NOT_DECRYPTED;
    if (stored && b.zstd) {
      // b.raw was bounded by blobProblem before the job was sent.
      if (scratch.length < b.raw) scratch = replaced(scratch, b.raw);
      try {
        raw = decompressBounded(dctx, stored, b.raw, scratch);
      } catch (e) {
        err = `cannot decompress (${message(e)})`;
      }
    }
    if (!err && blobId(raw).toString('hex') !== b.id) err = 'content does not match its id';
    blobErrors.push(err);
    if (err) return;
    for (const i of byBlob[bi]) {
      const w = job.writes[i];
      let fd = -1;
      try {
        if (w.whole) {
          fd = target.createFile(w.path);
          writeAll(fd, raw, 0);
          if (job.asRoot) fs.fchownSync(fd, w.uid, w.gid);
          fs.fchmodSync(fd, w.mode);
          fs.futimesSync(fd, w.mtime, w.mtime);
        } else {
          fd = target.openFile(w.path);
          writeAll(fd, raw, w.at);
        }
      } catch (e) {
        writeErrors[i] = message(e);
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
    }
  });
  port.postMessage({ id: job.id, blobErrors, writeErrors });
  // A buffer grown for one large blob is not kept: the next ranges are small again.
  if (segment.length > SEGMENT_KEPT) segment = replaced(segment, 0);
}

/**
 * Files below the chunker's maximum read here whole, so that the main thread only walks the tree: read, cut
 * (chunker.ts fileCuts: a mail message's base64 bodies are blobs of their own), hash and compress each piece.
 * A file that grew past the maximum since it was stat'ed is left to the window path (tooBig). Per file: bytes
 * read and number of pieces; per piece: stored bytes, raw length, flags and id.
 */
function files(job: Job): void {
  const parts: Buffer[] = [];
  const lengths: number[] = [];
  const raws: number[] = [];
  const flags: number[] = [];
  const idList: Buffer[] = [];
  const errors: (string | null)[] = [];
  const tooBig: boolean[] = [];
  const sizes: number[] = [];
  const pieces: number[] = [];
  for (const p of job.paths) {
    let data: Buffer;
    try {
      data = fs.readFileSync(p);
    } catch (e) {
      errors.push(withCode(e));
      tooBig.push(false);
      sizes.push(0);
      pieces.push(0);
      continue;
    }
    errors.push(null);
    sizes.push(data.length);
    tooBig.push(data.length > job.params.max);
    if (data.length > job.params.max) {
      pieces.push(0);
      continue;
    }
    let start = 0;
    const cuts = fileCuts(gear, data, job.params);
    for (const cut of cuts) {
      const piece = data.subarray(start, cut);
      idList.push(blobId(piece));
      raws.push(piece.length);
      store(piece, parts, lengths, flags, true);
      start = cut;
    }
    pieces.push(cuts.length);
  }
  const ab = transferable(Buffer.concat(parts));
  const idsAb = transferable(Buffer.concat(idList));
  port.postMessage({ id: job.id, data: ab, ids: idsAb, lengths, raws, flags, errors, tooBig, sizes, pieces }, [ab, idsAb]);
}

/**
 * A window of a large file: read [start, start + window + max), cut it (the same FastCDC as the main
 * thread), and take the chunks that start inside the window; each has its whole lookahead, so its cut
 * is final. The next window starts after them.
 */
let windowBuf = Buffer.allocUnsafe(0);
function window(job: Job): void {
  const want = job.window + job.params.max;
  if (windowBuf.length < want) windowBuf = Buffer.allocUnsafe(want);
  let fd = -1;
  let n = 0;
  try {
    fd = fs.openSync(job.path, 'r');
    for (;;) {
      const r = fs.readSync(fd, windowBuf, n, want - n, job.start + n);
      if (r === 0) break;
      n += r;
      if (n === want) break;
    }
  } catch (e) {
    if (fd >= 0) fs.closeSync(fd);
    port.postMessage({ id: job.id, error: withCode(e) });
    return;
  }
  fs.closeSync(fd);
  const eof = n < want;
  const data = windowBuf.subarray(0, n);
  const cuts: number[] = [];
  cutsInto(gear, data, job.params, cuts);
  const parts: Buffer[] = [];
  const lengths: number[] = [];
  const raws: number[] = [];
  const flags: number[] = [];
  const idList: Buffer[] = [];
  let start = 0;
  for (const cut of cuts) {
    if (!eof && start >= job.window) break;
    const chunk = data.subarray(start, cut);
    idList.push(blobId(chunk));
    raws.push(chunk.length);
    store(chunk, parts, lengths, flags, false);
    start = cut;
  }
  const ab = transferable(Buffer.concat(parts));
  const idsAb = transferable(Buffer.concat(idList));
  port.postMessage(
    { id: job.id, data: ab, ids: idsAb, lengths, raws, flags, errors: [], tooBig: [], next: job.start + start, eof: eof && start >= n },
    [ab, idsAb],
  );
}

port.on('message', (job: Job) => {
  if (job.op === 'window') window(job);
  else if (job.op === 'files') files(job);
  else if (job.op === 'restore') {
    restore(job);
    // What came transferred is let go of first, so that the collection frees it.
    const bytes = job.data.byteLength + dropped;
    job.data = new ArrayBuffer(0);
    dropped = 0;
    maybeGc(bytes, 8 * 1024 * 1024);
  } else if (job.op === 'compress') compress(job);
  else {
    verifyPack(job);
    // A pack that came whole is collected at once (the job let go of first): a worker holds one pack, not a pile.
    const bytes = job.data.byteLength + dropped;
    job.data = new ArrayBuffer(0);
    dropped = 0;
    maybeGc(bytes, 8 * 1024 * 1024);
  }
});
