/**
 * A worker thread of the codec pool (codec-pool.ts): compression, decompression, reading small files,
 * cutting windows of large ones, and writing restored files, each job one message. In an encrypted
 * repository it also seals what it compressed and opens what it decompresses, and keys blob ids.
 */
import fs from 'node:fs';
import { setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import binding from 'zstd-napi/binding.js';
import { cutsInto, fileCuts } from './chunker.js';
import type { RestoreBlob, RestoreWrite } from './codec-pool.js';
import { blobIdOf, RepositoryCipher, SEAL_OVERHEAD, sealInto } from './crypto.js';
import type { ChunkerParams } from './format.js';
import { PackVerifier } from './pack-check.js';
import { RestoreTarget } from './restore-target.js';
import { RestoreWriter } from './restore-writes.js';
import { ArenaRing, type ArenaPiece } from './arena-ring.js';
import { Dictionaries, dictionaryLevel } from './dictionaries.js';
import { PackAssembly, type SessionSlots } from './pack-assembly.js';
import type { BlobLimits } from './validate.js';

interface Job {
  id: number;
  op: 'compress' | 'verifyPack' | 'hashFiles' | 'hashWindow' | 'store' | 'session' | 'finish' | 'restore' | 'dictionary';
  /** compress, verifyPack: the dictionary of the blobs of compression 2 (null: none). */
  dictionary: string | null;
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
  /** store: the hash job whose blobs to store, which of them (1: store), the saver's session and pack size. */
  batch: number;
  keep: Uint8Array;
  session: number;
  packSize: number;
  /** session: its pack slots, shared by the workers. */
  shared: SessionSlots;
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
// The low-level binding compresses into buffers we own (and restore-writes.ts decompresses so): one
// allocation per batch, none per blob, so a worker's memory stays flat however many blobs go through it.
const cctx = new binding.CCtx();
/** The repository's dictionaries that the main thread sent (CodecPool.addDictionary). */
const dictionaries = new Dictionaries();
let scratch = Buffer.allocUnsafe(1 << 20);

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

function maybeGc(bytes: number, every = 32 * 1024 * 1024): void {
  sinceGc += bytes;
  if (sinceGc > every) {
    sinceGc = 0;
    collect();
  }
}

const message = (e: unknown): string => String((e as Error | undefined)?.message || e);
const withCode = (e: unknown): string => ((e as NodeJS.ErrnoException)?.code ? `${(e as NodeJS.ErrnoException).code}: ` : '') + message(e);

function compress(job: Job): void {
  const input = Buffer.from(job.data);
  let bound = 0;
  for (const len of job.lengths) bound += binding.compressBound(len) + (encryptKey ? SEAL_OVERHEAD : 0);
  const out = Buffer.allocUnsafeSlow(Math.max(bound, 1));
  const lengths: number[] = [];
  const flags: number[] = [];
  let off = 0;
  let o = 0;
  // With a dictionary (a stream of rows): compressed with it, at the level such blobs get.
  const cdict = job.dictionary ? dictionaries.cdict(job.dictionary, dictionaryLevel(level)) : null;
  const squeeze = (into: Buffer, blob: Buffer): number => (cdict ? cctx.compressUsingCDict(into, blob, cdict) : cctx.compress(into, blob, level));
  for (const len of job.lengths) {
    const blob = input.subarray(off, off + len);
    off += len;
    if (encryptKey) {
      // Compressed into the scratch buffer, then sealed into the output: one pass over each.
      const bound1 = binding.compressBound(len);
      if (scratch.length < bound1) scratch = Buffer.allocUnsafe(bound1);
      const n = len > 0 ? squeeze(scratch, blob) : len;
      const zstd = n < len;
      const sealed = sealInto(encryptKey, zstd ? scratch.subarray(0, n) : blob, out, o);
      lengths.push(sealed);
      flags.push(zstd ? 1 : 0);
      o += sealed;
      continue;
    }
    const n = len > 0 ? squeeze(out.subarray(o), blob) : len;
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

/**
 * One pack for `check --read-data`: its hash, header and every blob verified here (pack-check.ts PackVerifier);
 * only the findings go back. A pack on a local disk is read here through a window kept from pack to pack, never
 * whole; one from elsewhere comes whole, transferred.
 */
let packVerifier: PackVerifier | undefined;
function verifyPack(job: Job): void {
  packVerifier ??= new PackVerifier(cipher, blobWriter());
  try {
    const from = job.file ? { file: job.file } : { data: Buffer.from(job.data) };
    port.postMessage({ id: job.id, found: packVerifier.verify(job.name, from, job.indexedBlobs, job.limits, job.dictionary ?? undefined) });
  } catch (e) {
    port.postMessage({ id: job.id, error: message(e) });
  } finally {
    dropped += packVerifier.dropped;
    packVerifier.dropped = 0;
  }
}

/**
 * Restore: a range of a pack written into the files that want its blobs (restore-writes.ts). A range of a
 * local pack is read here into a buffer kept from job to job: nothing crosses threads.
 */
let restoreWriter: RestoreWriter | undefined;
/** Opens, decompresses and verifies stored blobs: a restore's and a check's, with one scratch buffer. */
function blobWriter(): RestoreWriter {
  return (restoreWriter ??= new RestoreWriter(encryptKey && idKey ? { encrypt: encryptKey, id: idKey } : null, dictionaries));
}
/** The most a worker keeps between restore jobs: a restore from a local disk reads at most 2 MiB at once. */
const SEGMENT_KEPT = 2 * 1024 * 1024;
function restore(job: Job): void {
  const writer = blobWriter();
  let input: Buffer;
  if (job.file) {
    try {
      input = writer.readLocal(job.file, job.start, job.length);
    } catch (e) {
      port.postMessage({ id: job.id, readError: message(e) });
      return;
    }
  } else input = Buffer.from(job.data);
  port.postMessage({ id: job.id, ...writer.write(input, job.blobs, job.writes, RestoreTarget.at(job.target), job.asRoot) });
  writer.trim(SEGMENT_KEPT);
  dropped += writer.dropped;
  writer.dropped = 0;
}

/**
 * Blobs read and hashed by `hashFiles` or `hashWindow`, waiting for the main thread to say which to store
 * (`store`): the others the repository or this backup already has. Their bytes stay here, in an arena.
 */
const held = new Map<number, { piece: ArenaPiece; ids: Buffer; offs: number[]; lens: number[] }>();
/** Held blobs live in one ring per worker (a few batches of small files, or a window or two of a large file). */
const RING_BYTES = 6 * 1024 * 1024;
const ring = new ArenaRing(RING_BYTES, letGo);
// A part's slot is shared memory (the session's, shared by the workers): posted, not transferred.
const packs = new PackAssembly(cctx, level, encryptKey, (p) => port.postMessage(p), sealedPieces, threadId);

/**
 * Buffers a worker lets go of are freed by its garbage collector, which a worker that allocates little else
 * seldom runs: it runs once this many bytes were let go, so that they do not pile up.
 */
const DROPPED_GC_BYTES = 32 * 1024 * 1024;
let letGoBytes = 0;
function letGo(bytes: number): void {
  letGoBytes += bytes;
  if (letGoBytes < DROPPED_GC_BYTES) return;
  letGoBytes = 0;
  collect();
}

/** Ciphertext pieces (crypto.ts sealInto) are collected with the young generation every this many bytes sealed. */
const SEALED_GC_BYTES = 4 * 1024 * 1024;
let sealedBytes = 0;
const collectYoung = (): void => (collect as (o: { type: 'minor' }) => void)({ type: 'minor' });
function sealedPieces(bytes: number): void {
  sealedBytes += bytes;
  if (sealedBytes < SEALED_GC_BYTES) return;
  sealedBytes = 0;
  collectYoung();
}

/** Reads [at, at + len) of an open file into `into` at `to`; fewer bytes when the file is shorter now. */
function readInto(fd: number, into: Buffer, to: number, len: number, at: number): number {
  let got = 0;
  while (got < len) {
    const r = fs.readSync(fd, into, to + got, len - got, at + got);
    if (r === 0) break;
    got += r;
  }
  return got;
}

/**
 * Files below the chunker's maximum read here whole, so that the main thread only walks the tree: read (into
 * an arena, no buffer per file), cut (chunker.ts fileCuts: a mail message's base64 bodies are blobs of their
 * own) and hashed; only the pieces' ids go back, and the pieces are held for `store`. A file that grew past the
 * maximum since it was stat'ed is left to the window path (tooBig). Per file: bytes read and number of pieces;
 * per piece: id and raw length.
 */
function hashFiles(job: Job): void {
  let piece = ring.take(job.bytes);
  let arena = piece.buf;
  let used = 0;
  const n = job.paths.length;
  const idList: Buffer[] = [];
  const raws: number[] = [];
  const sizes: number[] = [];
  const pieces: number[] = [];
  const errors: (string | null)[] = [];
  const tooBig: boolean[] = [];
  const offs: number[] = [];
  for (let i = 0; i < n; i++) {
    let fd = -1;
    let size = 0;
    let big = false;
    let error: string | null = null;
    try {
      fd = fs.openSync(job.paths[i], 'r');
      const st = fs.fstatSync(fd);
      if (st.size > job.params.max) {
        big = true;
        size = st.size;
      } else {
        if (used + st.size > arena.length) {
          // Files larger than their stat said: a bigger arena, this job only.
          const bigger = ring.take(Math.max(2 * arena.length, used + st.size));
          arena.copy(bigger.buf, 0, 0, used);
          ring.release(piece);
          piece = bigger;
          arena = piece.buf;
        }
        size = readInto(fd, arena, used, st.size, 0);
      }
    } catch (e) {
      error = withCode(e);
      size = 0;
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
    errors.push(error);
    tooBig.push(big);
    sizes.push(size);
    if (error || big || size === 0) {
      pieces.push(0);
      continue;
    }
    const data = arena.subarray(used, used + size);
    const cuts = fileCuts(gear, data, job.params);
    let start = 0;
    for (const cut of cuts) {
      idList.push(blobId(data.subarray(start, cut)));
      offs.push(used + start);
      raws.push(cut - start);
      start = cut;
    }
    pieces.push(cuts.length);
    used += size;
  }
  const ids = Buffer.concat(idList);
  held.set(job.id, { piece, ids, offs, lens: raws });
  port.postMessage({ id: job.id, hashed: true, ids, raws, errors, tooBig, sizes, pieces });
}

/**
 * A window of a large file: read [start, start + window + max), cut it (the same FastCDC as the main
 * thread), and take the chunks that start inside the window; each has its whole lookahead, so its cut
 * is final. The next window starts after them. The chunks are hashed and held for `store`.
 */
function hashWindow(job: Job): void {
  const want = job.window + job.params.max;
  let fd = -1;
  let n = 0;
  let piece: ArenaPiece | undefined;
  try {
    fd = fs.openSync(job.path, 'r');
    const len = Math.max(0, Math.min(want, fs.fstatSync(fd).size - job.start));
    piece = ring.take(len);
    n = readInto(fd, piece.buf, 0, len, job.start);
  } catch (e) {
    if (piece) ring.release(piece);
    port.postMessage({ id: job.id, error: withCode(e) });
    return;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
  const arena = piece.buf;
  const eof = n < want;
  const data = arena.subarray(0, n);
  const cuts: number[] = [];
  cutsInto(gear, data, job.params, cuts);
  const idList: Buffer[] = [];
  const raws: number[] = [];
  const offs: number[] = [];
  let start = 0;
  for (const cut of cuts) {
    if (!eof && start >= job.window) break;
    idList.push(blobId(data.subarray(start, cut)));
    offs.push(start);
    raws.push(cut - start);
    start = cut;
  }
  const ids = Buffer.alloc(32 * idList.length);
  idList.forEach((id, i) => id.copy(ids, 32 * i));
  held.set(job.id, { piece, ids, offs, lens: raws });
  port.postMessage({ id: job.id, hashed: true, ids, raws, errors: [], tooBig: [], next: job.start + start, eof: eof && start >= n });
}

/** Compresses the held blobs the main thread wants (job.keep) into this session's data pack. */
function storeHeld(job: Job): void {
  const h = held.get(job.batch);
  if (!h) {
    port.postMessage({ id: job.id, error: `no blobs held for job ${job.batch}` });
    return;
  }
  held.delete(job.batch);
  try {
    for (let i = 0; i < h.lens.length; i++) {
      if (job.keep[i] !== 1) continue;
      packs.add(job.session, job.packSize, h.ids.subarray(32 * i, 32 * (i + 1)), h.piece.buf.subarray(h.offs[i], h.offs[i] + h.lens[i]));
    }
  } catch (e) {
    port.postMessage({ id: job.id, error: withCode(e) });
    return;
  } finally {
    ring.release(h.piece);
  }
  port.postMessage({ id: job.id, stored: true });
}

port.on('message', (job: Job) => {
  if (job.op === 'hashWindow') hashWindow(job);
  else if (job.op === 'hashFiles') hashFiles(job);
  else if (job.op === 'store') storeHeld(job);
  else if (job.op === 'session') packs.join(job.session, job.shared);
  else if (job.op === 'finish') {
    packs.end(job.session);
    port.postMessage({ id: job.id, stored: true });
  }
  else if (job.op === 'restore') {
    restore(job);
    // What came transferred is let go of first, so that the collection frees it.
    const bytes = job.data.byteLength + dropped;
    job.data = new ArrayBuffer(0);
    dropped = 0;
    maybeGc(bytes, 8 * 1024 * 1024);
  } else if (job.op === 'compress') compress(job);
  else if (job.op === 'dictionary') dictionaries.add(job.name, new Uint8Array(job.data));
  else {
    verifyPack(job);
    // A pack that came whole is collected at once (the job let go of first): a worker holds one pack, not a pile.
    const bytes = job.data.byteLength + dropped;
    job.data = new ArrayBuffer(0);
    dropped = 0;
    maybeGc(bytes, 8 * 1024 * 1024);
  }
});
