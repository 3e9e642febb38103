import { BlobType } from './blob-index.js';
import { webcrypto } from 'node:crypto';
import { toHex } from './hash.js';
import type { FilesResult } from './codec-pool.js';
import type { ChunkerParams } from './format.js';
import type { IndexFile } from './index-file.js';
import type { PackBuilder, PackEntry } from './pack.js';
import type { Repository } from './repository.js';

const BATCH_BYTES = 1024 * 1024;
const BATCH_BLOBS = 512;
/**
 * Memory stays bounded whatever the size of the source: at most this many raw bytes wait for or sit
 * in the codec pool, each pack builder holds at most one pack, and at most MAX_PACK_WRITES packs are
 * being written. Each limit frees itself (the codec always answers, writes always end), so a wait
 * can never deadlock, whatever the compression ratio.
 */
const MAX_QUEUED = 16 * 1024 * 1024;
const MAX_PACK_WRITES = 2;
/** An index file is written every this many packs, so an interrupted backup keeps most of its work indexed. */
const PACKS_PER_INDEX = 32;
/** ...or this many blobs, which keeps an index file under 8 MiB. */
const BLOBS_PER_INDEX = 150_000;

export interface SavedFile {
  /** Blob ids of its content, in order: none for an empty file or one that grew too big to be read here. */
  ids: Buffer[];
  /** Bytes read. */
  size: number;
  tooBig: boolean;
}

export interface SaverStats {
  blobsNew: number;
  /** Bytes of pack files written. */
  bytesAdded: number;
}

/**
 * Takes blobs (already hashed by the caller), drops the ones the repository has, compresses the
 * others on the codec pool, packs them (data and tree blobs apart) and writes packs, then indexes.
 * Write order is pack, then index; the caller writes the snapshot after `flush()`.
 */
export class BlobSaver {
  readonly stats: SaverStats = { blobsNew: 0, bytesAdded: 0 };
  private readonly pending = new Set<string>();
  private batch: { data: Uint8Array; used: number; ids: Buffer[]; types: BlobType[]; lengths: number[] } | undefined;
  private fileBatch: { paths: string[]; bytes: number; params: ChunkerParams; waiters: { resolve: (r: SavedFile) => void; reject: (e: Error) => void }[] } | undefined;
  private fileTimer: NodeJS.Immediate | undefined;
  private readonly builders: Record<BlobType, PackBuilder>;
  private readonly work = new Set<Promise<void>>();
  private unindexed: IndexFile['packs'] = [];
  private unindexedBlobs = 0;
  private indexing: Promise<void> = Promise.resolve();
  private queued = 0;
  private packWrites = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;

  constructor(private readonly repo: Repository) {
    this.builders = { [BlobType.Data]: repo.packBuilder(), [BlobType.Tree]: repo.packBuilder() };
  }

  /** Why writing to the repository failed, once it has: every later save throws it. */
  get writeFailure(): Error | undefined {
    return this.failure;
  }

  /** Stores a blob unless the repository already has it; resolves true when it was new. */
  async save(type: BlobType, id: Buffer, raw: Uint8Array): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.repo.reusable(id)) return false;
    const hex = toHex(id);
    if (this.pending.has(hex)) return false;
    this.pending.add(hex);
    await this.room();
    this.queued += raw.byteLength;
    let b = this.batch;
    if (b && b.used + raw.byteLength > b.data.byteLength) {
      this.dispatch();
      b = undefined;
    }
    if (!b) {
      b = this.batch = { data: new Uint8Array(Math.max(BATCH_BYTES, raw.byteLength)), used: 0, ids: [], types: [], lengths: [] };
    }
    b.data.set(raw, b.used);
    b.used += raw.byteLength;
    b.ids.push(id);
    b.types.push(type);
    b.lengths.push(raw.byteLength);
    if (b.ids.length >= BATCH_BLOBS || b.used >= BATCH_BYTES) this.dispatch();
    return true;
  }

  /**
   * Stores a small file (below the file chunker's minimum) read on a worker; resolves with its id and
   * size as read. `tooBig` when it grew past `params.max` since it was stat'ed: the caller reads it window by window.
   */
  async saveFile(path: string, expectedSize: number, params: ChunkerParams): Promise<SavedFile> {
    await this.room();
    this.queued += expectedSize;
    const b = (this.fileBatch ??= { paths: [], bytes: 0, params, waiters: [] });
    b.paths.push(path);
    b.bytes += expectedSize;
    const result = new Promise<SavedFile>((resolve, reject) => b.waiters.push({ resolve, reject }));
    if (b.paths.length >= 64 || b.bytes >= BATCH_BYTES) this.dispatchFiles();
    else this.fileTimer ??= setImmediate(() => this.dispatchFiles());
    return result;
  }

  private dispatchFiles(): void {
    if (this.fileTimer) clearImmediate(this.fileTimer);
    this.fileTimer = undefined;
    const b = this.fileBatch;
    if (!b || b.paths.length === 0) return;
    this.fileBatch = undefined;
    const job = this.repo
      .codec()
      .files(b.paths, b.bytes, b.params)
      .then((r) => {
        this.queued -= b.bytes;
        this.wake();
        let piece = 0;
        for (let i = 0; i < b.paths.length; i++) {
          const w = b.waiters[i];
          const first = piece;
          piece += r.pieces[i];
          if (r.errors[i]) {
            const err = new Error(`reading ${b.paths[i]}: ${r.errors[i]}`) as NodeJS.ErrnoException;
            err.code = r.errors[i]!.split(':')[0];
            w.reject(err);
            continue;
          }
          const ids: Buffer[] = [];
          for (let k = first; k < piece; k++) ids.push(this.keepHashed(r, k));
          w.resolve({ ids, size: r.sizes[i], tooBig: r.tooBig[i] });
        }
      });
    this.track(
      job.catch((err: unknown) => {
        for (const w of b.waiters) w.reject(err instanceof Error ? err : new Error(String(err)));
        throw err;
      }),
    );
  }

  /**
   * Stores a large file window by window on the codec workers (read, cut, hash, compress there);
   * resolves with its data blob ids in order and the bytes read.
   */
  async saveLargeFile(path: string, params: ChunkerParams, onBytes: (n: number) => void): Promise<{ ids: Buffer[]; size: number }> {
    const WINDOW = 4 * 1024 * 1024;
    const ids: Buffer[] = [];
    let pos = 0;
    for (;;) {
      await this.room();
      this.queued += WINDOW;
      let r;
      try {
        r = await this.repo.codec().fileWindow(path, pos, WINDOW, params);
      } finally {
        this.queued -= WINDOW;
        this.wake();
      }
      for (let i = 0; i < r.raws.length; i++) ids.push(this.keepHashed(r, i));
      onBytes(r.next - pos);
      pos = r.next;
      if (r.eof) return { ids, size: pos };
    }
  }

  /** Blob i of a worker's result, hashed there: packed unless the repository or this backup has it. */
  private keepHashed(r: FilesResult, i: number): Buffer {
    const id = Buffer.from(r.ids.subarray(32 * i, 32 * (i + 1)));
    const hex = toHex(id);
    if (!this.repo.reusable(id) && !this.pending.has(hex)) {
      this.pending.add(hex);
      const builder = this.builders[BlobType.Data];
      builder.add(id, BlobType.Data, r.outputs[i], r.compressed[i], r.raws[i]);
      if (builder.size >= this.repo.config.packSize) this.track(this.writePack(BlobType.Data));
    }
    return id;
  }

  /** Everything saved so far is in written packs and indexed once this resolves. */
  async flush(): Promise<void> {
    this.dispatchFiles();
    this.dispatch();
    while (this.work.size > 0) await Promise.all([...this.work]);
    if (this.failure) throw this.failure;
    for (const type of [BlobType.Data, BlobType.Tree]) if (this.builders[type].blobCount > 0) this.track(this.writePack(type));
    while (this.work.size > 0) await Promise.all([...this.work]);
    if (this.failure) throw this.failure;
    this.queueIndex();
    await this.indexing;
    if (this.failure) throw this.failure;
  }

  private dispatch(): void {
    const b = this.batch;
    if (!b || b.ids.length === 0) return;
    this.batch = undefined;
    // The whole batch buffer goes over (transferred, not copied); the worker reads only `lengths`.
    const job = this.repo
      .codec()
      .compressPacked(b.data, b.lengths)
      .then((r) => {
        this.queued -= b.used;
        this.wake();
        for (let i = 0; i < b.ids.length; i++) {
          const type = b.types[i];
          const builder = this.builders[type];
          // Tree packs fill slowly (they are written last): copy their small blobs out of the batch's
          // result buffer, or every batch buffer would stay alive until the end of the backup.
          const stored = type === BlobType.Tree ? Buffer.from(r.outputs[i]) : r.outputs[i];
          builder.add(b.ids[i], type, stored, r.compressed[i], b.lengths[i]);
          if (builder.size >= this.repo.config.packSize) this.track(this.writePack(type));
        }
      });
    this.track(job);
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch((err: unknown) => {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
      this.wake();
    });
    this.work.add(tracked);
    void tracked.finally(() => this.work.delete(tracked));
  }

  private async writePack(type: BlobType): Promise<void> {
    const builder = this.builders[type];
    this.builders[type] = this.repo.packBuilder();
    // One buffer for the pack, hashed on libuv's pool (WebCrypto) rather than on the main thread.
    let pack = Buffer.concat(builder.finish());
    let id = toHex(Buffer.from(await webcrypto.subtle.digest('SHA-256', pack)));
    if (this.repo.pruneMarks.has(id)) {
      // Byte for byte a pack a prune marked for deletion (the same blobs stored again): written under that
      // name it would be the very file the prune deletes once the grace period ends, perhaps before this
      // backup's snapshot exists. Its first blob once more makes it a new file.
      const first = builder.entries[0];
      builder.add(first.id, first.type, Buffer.from(pack.subarray(first.offset, first.offset + first.length)), first.zstd, first.rawLength);
      pack = Buffer.concat(builder.finish());
      id = toHex(Buffer.from(await webcrypto.subtle.digest('SHA-256', pack)));
    }
    const size = pack.length;
    this.packWrites++;
    try {
      await this.repo.writePack(id, pack);
    } finally {
      this.packWrites--;
      this.wake();
    }
    const entries: PackEntry[] = builder.entries;
    for (const e of entries) {
      this.repo.indexBlob(e.id, { ...e, pack: id });
      this.pending.delete(toHex(e.id));
    }
    this.stats.blobsNew += entries.length;
    this.stats.bytesAdded += size;
    this.unindexed.push({ id, blobs: entries });
    this.unindexedBlobs += entries.length;
    if (this.unindexed.length >= PACKS_PER_INDEX || this.unindexedBlobs >= BLOBS_PER_INDEX) this.queueIndex();
  }

  private queueIndex(): void {
    if (this.unindexed.length === 0) return;
    const packs = this.unindexed;
    this.unindexed = [];
    this.unindexedBlobs = 0;
    this.indexing = this.indexing.then(async () => {
      if (this.failure) return;
      try {
        await this.repo.writeIndex(packs);
      } catch (err) {
        this.failure ??= err as Error;
      }
    });
  }

  /** Waits until the queue and the pack writes have room (see MAX_QUEUED); throws a write failure. */
  private async room(): Promise<void> {
    if (this.failure) throw this.failure;
    while ((this.queued > MAX_QUEUED || this.packWrites >= MAX_PACK_WRITES) && !this.failure) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}
