import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { MasterKey } from './crypto.js';
import type { ChunkerParams } from './format.js';
import type { BlobLimits } from './validate.js';
import { releasePack, sessionSlots, type FinishedPack, type PackPart, type SessionSlots } from './pack-assembly.js';
import { workerSettings, type WorkerSettings } from './worker-settings.js';

/**
 * zstd on worker threads, so that compression (the costliest step of a backup) and decompression
 * (of a restore) run on every core while the main thread reads, chunks and hashes.
 * Work goes in batches: one message carries many small blobs (most mail messages are a few KiB).
 * The workers run codec-worker.ts.
 */

export interface CodecResult {
  /** Stored bytes of each blob, as views into one buffer. */
  outputs: Buffer[];
  /** For compression: whether each output is zstd (false: stored raw because it did not shrink). */
  compressed: boolean[];
  /** For decompression: per-blob error message, when the stored bytes are damaged. */
  errors: (string | null)[];
}

/** One blob of a restore job: where its stored bytes are in the job's buffer, and its id to verify. */
export interface RestoreBlob {
  off: number;
  len: number;
  /** Bytes once decompressed (from the index). */
  raw: number;
  zstd: boolean;
  /** The dictionary of a blob of compression 2 (sent to the workers with CodecPool.addDictionary first). */
  dictionary?: string;
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

/**
 * Blobs read and hashed on a worker (files, or a window of a large file), held there until `store` says
 * which to compress into the session's pack. Per blob: id, raw size; per file: error, too big.
 */
export interface HashedBatch {
  /** The worker that holds the blobs, and its job. */
  worker: number;
  job: number;
  ids: Buffer;
  raws: number[];
  errors: (string | null)[];
  tooBig: boolean[];
}

/** Files read whole on a worker: per file, the bytes read and how many of the batch's blobs are its pieces, in order. */
export interface HashedFiles extends HashedBatch {
  sizes: number[];
  pieces: number[];
}

export interface RestoreResult {
  blobErrors: (string | null)[];
  writeErrors: (string | null)[];
  /** The worker could not read the range it was given (nothing was written). */
  readError?: string;
}

interface Pending {
  resolve: (r: never) => void;
  reject: (e: Error) => void;
}

/** What a worker's load counts for a pack it reads itself (its window), so that such packs spread evenly. */
const PACK_WINDOW_COST = 1 << 20;
/**
 * Workers start as work comes (see `post`): another whenever every started one is busy, except for a backup's
 * work (reading files, compressing blobs), where one more starts only once that much more was given and work
 * still waits: an incremental backup that reads a few changed files keeps one worker (each costs some 15 MiB:
 * its heap, its ring of held blobs, its compressor, a pack slot), a first backup soon has them all.
 */
const BACKUP_BYTES_PER_WORKER = 32 << 20;
/** ...and the backup work queued on the least loaded worker (bytes, as `load` counts them) is more than this. */
const QUEUED_TO_START = 2 << 20;
/**
 * What the work of a backup with a parent counts towards BACKUP_BYTES_PER_WORKER: it reads only the files that
 * changed, and its walk over those that did not sets its pace. A day of new mail (some 80 MiB) took 12% less
 * time and 15 MiB less memory on one worker than on two; past 256 MiB of changes, a second one starts.
 */
const WITH_PARENT_WEIGHT = 1 / 8;

/** Whose backup work a job is: none (a restore's, a check's), a first backup's, or that of a backup with a parent. */
export type BackupWork = 'none' | 'first' | 'with-parent';

export class CodecPool {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending & { worker: number }>();
  private nextId = 1;
  private closed = false;
  private readonly sessions = new Map<number, (message: PackPart | FinishedPack) => void>();
  private nextSession = 1;
  /** Bytes a backup gave the workers to read or compress so far. */
  private backupBytes = 0;

  /** The dictionaries given to the workers, for a worker started after they were given. */
  private readonly dictionaries = new Map<string, Uint8Array>();
  /** Open sessions' pack slots, for a worker started after they were opened. */
  private readonly sessionSlots = new Map<number, SessionSlots>();
  private readonly url: URL;

  /**
   * `key`: an encrypted repository's, so that the workers seal, open and key blob ids.
   * `settings`: how many workers at most and their nice value (DP_BACKUP_WORKERS, DP_BACKUP_NICE by default).
   * One worker starts at once, the others only when work queues up (see `post`): each costs memory (its heap,
   * its buffers), which an incremental backup that reads a few files does not need.
   */
  constructor(
    private readonly level: number,
    private readonly gear: Int32Array,
    private readonly key: MasterKey | null = null,
    private readonly settings: WorkerSettings = workerSettings(),
  ) {
    this.url = workerUrl();
    this.startWorker();
  }

  private startWorker(): number {
    const i = this.workers.length;
    const w = new Worker(this.url, { workerData: { level: this.level, gear: this.gear, key: this.key, nice: this.settings.nice }, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    w.unref();
    w.on('message', (m: Parameters<CodecPool['done']>[0]) => this.done(m, i));
    w.on('error', (err) => this.failAll(err));
    this.workers.push(w);
    this.load.push(0);
    // Messages to a worker are taken in order: it knows the open sessions' slots before any of their blobs.
    for (const [session, shared] of this.sessionSlots) w.postMessage({ op: 'session', session, shared });
    for (const [name, bytes] of this.dictionaries) w.postMessage({ op: 'dictionary', name, data: new Uint8Array(bytes) });
    return i;
  }

  /**
   * Blobs already laid end to end in `data` (the saver fills one batch buffer: no second copy); the
   * worker reads only `lengths` of it.
   */
  compressPacked(data: Uint8Array, lengths: number[], dictionary?: string): Promise<CodecResult> {
    return this.post(data, data.byteLength, (id) => ({ id, op: 'compress', lengths, flags: [], dictionary: dictionary ?? null }), undefined, 'first') as Promise<CodecResult>;
  }

  /**
   * A dictionary (FORMAT.md, "Dictionaries") for every worker to keep: jobs posted after this may use it (a
   * worker takes its messages in order). Each worker gets its own copy, once.
   */
  addDictionary(id: string, bytes: Uint8Array): void {
    if (this.closed || this.dictionaries.has(id)) return;
    this.dictionaries.set(id, bytes);
    for (const w of this.workers) w.postMessage({ op: 'dictionary', name: id, data: new Uint8Array(bytes) });
  }

  /**
   * Verifies one pack (`check --read-data`) on a worker: its hash against its name, its header against the
   * index's blob count (null: no index lists it, only the hash is checked), then every blob decompressed (no
   * further than its declared size) and hashed. A pack on a local disk (`file`) is read by the worker
   * through a small window; one read whole (`data`) is transferred, not copied: the caller must not use it
   * afterwards. Only the findings come back, in check's words.
   */
  verifyPack(name: string, from: { file: string } | { data: Buffer }, indexedBlobs: number | null, limits: BlobLimits, dictionary?: string): Promise<string[]> {
    const data = 'data' in from ? from.data : new Uint8Array(0);
    const file = 'file' in from ? from.file : null;
    return this.post(data, 'data' in from ? data.byteLength : PACK_WINDOW_COST, (id) => ({ id, op: 'verifyPack', name, file, indexedBlobs, limits, dictionary: dictionary ?? null })) as Promise<string[]>;
  }

  /** How many workers it may run: callers size their concurrency to it (workers start as work queues up). */
  get size(): number {
    return this.settings.workers;
  }

  /** How many workers have started so far. */
  get started(): number {
    return this.workers.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /**
   * A saver's session: the workers assemble its data packs apart from any other saver's, a part at a time in
   * slots shared by all of them (see pack-assembly.ts), and hand each part to `sink` (its bytes in shared
   * memory), then each pack's end; the sink calls releasePack once a part is written. `marks`: the packs a
   * prune marked for deletion, which no pack of the session may be named as.
   */
  openSession(sink: (message: PackPart | FinishedPack) => void, marks: Iterable<string> = []): number {
    const session = this.nextSession++;
    this.sessions.set(session, sink);
    // Slots for every worker that may start: a slot is untouched memory until a part fills it.
    const shared = sessionSlots(this.settings.workers, undefined, [...marks]);
    this.sessionSlots.set(session, shared);
    // Messages to a worker are taken in order: each knows the slots before the session's first blob.
    for (const w of this.workers) w.postMessage({ op: 'session', session, shared });
    return session;
  }

  closeSession(session: number): void {
    this.sessions.delete(session);
    this.sessionSlots.delete(session);
  }

  /**
   * Reads, cuts (chunker.ts fileCuts) and hashes files below `params.max` on a worker: the main thread only sends
   * their paths and gets their pieces' ids. A file that grew past `params.max` since its stat is flagged (tooBig).
   */
  hashFiles(paths: string[], expectedBytes: number, params: ChunkerParams, work: BackupWork = 'first'): Promise<HashedFiles> {
    return this.post(new Uint8Array(0), expectedBytes, (id) => ({ id, op: 'hashFiles', paths, params, bytes: expectedBytes }), undefined, work) as Promise<HashedFiles>;
  }

  /** One window of a large file, cut and hashed on a worker (see the worker's `hashWindow`). */
  hashWindow(path: string, start: number, window: number, params: ChunkerParams, work: BackupWork = 'first'): Promise<HashedBatch & { next: number; eof: boolean }> {
    return this.post(new Uint8Array(0), window, (id) => ({ id, op: 'hashWindow', path, start, window, params }), undefined, work) as Promise<HashedBatch & { next: number; eof: boolean }>;
  }

  /**
   * Compresses the blobs of a hashed batch that `keep` marks (1) into the session's data pack, on the worker
   * that holds them; every batch is stored once, even with nothing to keep (that frees its bytes there).
   * Packs it finishes reach the session's sink before this resolves.
   */
  store(batch: HashedBatch, keep: Uint8Array, session: number, packSize: number): Promise<void> {
    let bytes = 0;
    for (let i = 0; i < keep.length; i++) if (keep[i] === 1) bytes += batch.raws[i];
    return this.post(new Uint8Array(0), bytes, (id) => ({ id, op: 'store', batch: batch.job, keep, session, packSize }), batch.worker) as Promise<void>;
  }

  /** Every worker finishes the session's open pack and forgets the session; the packs reach its sink before this resolves. */
  async finishPacks(session: number): Promise<void> {
    await Promise.all(this.workers.map((_, w) => this.post(new Uint8Array(0), 0, (id) => ({ id, op: 'finish', session }), w)));
  }

  /**
   * Decompresses, verifies and writes blobs straight into the restored files on a worker, so that file
   * writes (open, write, owner, mode, times, close: most of a restore of small files) use every core.
   * `data` is transferred: the caller must not use it afterwards.
   */
  /**
   * `target`: the restore target's real path (RestoreTarget.root); every write goes through a RestoreTarget there.
   * `from`: the stored bytes, transferred (the caller must not use them afterwards), or a range of a pack on a
   * local disk that the worker reads itself into a buffer it keeps; a range it cannot read comes back as `readError`.
   */
  restore(from: Buffer | { file: string; start: number; length: number }, blobs: RestoreBlob[], writes: RestoreWrite[], target: string, asRoot: boolean): Promise<RestoreResult> {
    if (Buffer.isBuffer(from)) return this.post(from, from.byteLength, (id) => ({ id, op: 'restore', blobs, writes, target, asRoot })) as Promise<RestoreResult>;
    return this.post(new Uint8Array(0), from.length, (id) => ({ id, op: 'restore', file: from.file, start: from.start, length: from.length, blobs, writes, target, asRoot })) as Promise<RestoreResult>;
  }

  /** `worker`: the one that must take the job (it holds what the job needs); else the least loaded. */
  /** `work`: a backup's (see BACKUP_BYTES_PER_WORKER), whose `total` counts towards `backupBytes`, or none. */
  private post(data: Uint8Array, total: number, message: (id: number) => Record<string, unknown>, worker?: number, work: BackupWork = 'none'): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('codec pool is closed'));
    const backup = work !== 'none';
    let w = worker ?? 0;
    if (worker === undefined) {
      for (let i = 1; i < this.load.length; i++) if (this.load[i] < this.load[w]) w = i;
      const more = backup ? this.load[w] >= QUEUED_TO_START && this.backupBytes >= BACKUP_BYTES_PER_WORKER * this.workers.length : this.load[w] > 0;
      if (more && this.workers.length < this.settings.workers) w = this.startWorker();
    }
    if (backup) this.backupBytes += work === 'with-parent' ? total * WITH_PARENT_WEIGHT : total;
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

  private done(m: { id: number; op?: string; found?: string[]; readError?: string; data: ArrayBuffer; ids?: Uint8Array; lengths: number[]; flags: number[]; errors: (string | null)[]; blobErrors?: (string | null)[]; writeErrors?: (string | null)[]; raws?: number[]; tooBig?: boolean[]; sizes?: number[]; pieces?: number[]; next?: number; eof?: boolean; hashed?: boolean; stored?: boolean; error?: string }, worker: number): void {
    if (m.op === 'pack' || m.op === 'part') {
      const message = m as unknown as PackPart | FinishedPack;
      const sink = this.sessions.get(message.session);
      if (sink) sink(message);
      else if (message.op === 'part') releasePack(message);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.error) {
      const err = new Error(m.error) as NodeJS.ErrnoException;
      err.code = m.error.split(':')[0];
      p.reject(err);
      return;
    }
    if (m.stored) {
      (p.resolve as (r: void) => void)();
      return;
    }
    if (m.found) {
      (p.resolve as (r: string[]) => void)(m.found);
      return;
    }
    if (m.readError !== undefined) {
      (p.resolve as (r: RestoreResult) => void)({ blobErrors: [], writeErrors: [], readError: m.readError });
      return;
    }
    if (m.hashed) {
      const ids = Buffer.from(m.ids!.buffer, m.ids!.byteOffset, m.ids!.byteLength);
      (p.resolve as (r: HashedBatch & Partial<HashedFiles> & { next?: number; eof?: boolean }) => void)({ worker, job: m.id, ids, raws: m.raws!, errors: m.errors, tooBig: m.tooBig!, sizes: m.sizes, pieces: m.pieces, next: m.next, eof: m.eof });
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

let worker: URL | undefined;

/**
 * The compiled worker beside this module (dist/); when this module is the .ts source (vitest transforms it,
 * but a worker thread runs plain Node), the build's copy under dist/ instead; when it is a chunk of the bundled
 * command line (dist/server/cli/, see cli.bundle.config.ts), the one under dist/server/engine/.
 */
function workerUrl(): URL {
  if (worker) return worker;
  const candidates = ['./codec-worker.js', '../../dist/server/engine/codec-worker.js', '../engine/codec-worker.js'].map((rel) => new URL(rel, import.meta.url));
  worker = candidates.find((u) => existsSync(fileURLToPath(u)));
  if (!worker) throw new Error(`codec worker not found (looked for ${candidates.map((u) => fileURLToPath(u)).join(', ')}): run 'npm run build'`);
  return worker;
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
