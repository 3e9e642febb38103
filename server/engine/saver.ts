import { BlobType } from './blob-index.js';
import { webcrypto } from 'node:crypto';
import { sha256, toHex } from './hash.js';
import type { BackupWork, CodecPool } from './codec-pool.js';
import type { ChunkerParams } from './format.js';
import type { IndexFile } from './index-file.js';
import { releasePack, type FinishedPack, type PackPart } from './pack-assembly.js';
import type { PackBuilder, PackEntry } from './pack.js';
import type { Repository } from './repository.js';
import type { PartWriter } from './storage.js';

const BATCH_BYTES = 1024 * 1024;
const BATCH_BLOBS = 512;
/** A large file is read, cut and hashed this many bytes at a time (plus the chunker's lookahead). */
const WINDOW = 4 * 1024 * 1024;
/**
 * Memory stays bounded whatever the size of the source: at most this many raw bytes wait for or sit
 * in the codec pool, each pack builder holds at most one pack, and at most MAX_PACK_WRITES packs are
 * being written. Each limit frees itself (the codec always answers, writes always end), so a wait
 * can never deadlock, whatever the compression ratio.
 */
const MAX_QUEUED = 8 * 1024 * 1024;
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
 * Files (saveFile, saveLargeFile) go further: a codec worker reads and hashes them, this thread only
 * says which blobs are new, and the worker packs those itself (pack-assembly.ts); its finished packs
 * are written and indexed here like the others.
 * Write order is pack, then index; the caller writes the snapshot after `flush()`.
 */
export class BlobSaver {
  readonly stats: SaverStats = { blobsNew: 0, bytesAdded: 0 };
  private readonly pending = new Set<string>();
  private batch: { data: Uint8Array; used: number; ids: Buffer[]; types: BlobType[]; lengths: number[]; dictionary?: string } | undefined;
  private fileBatch: { paths: string[]; bytes: number; params: ChunkerParams; waiters: { resolve: (r: SavedFile) => void; reject: (e: Error) => void }[] } | undefined;
  private fileTimer: NodeJS.Immediate | undefined;
  private readonly builders: Record<BlobType, PackBuilder>;
  /** Packs of blobs compressed with a dictionary: one pack names one dictionary (FORMAT.md). */
  private readonly dictionaryBuilders = new Map<string, PackBuilder>();
  private readonly work = new Set<Promise<void>>();
  private unindexed: IndexFile['packs'] = [];
  private unindexedBlobs = 0;
  private indexing: Promise<void> = Promise.resolve();
  private queued = 0;
  private packWrites = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;
  private session: number | undefined;
  /** Data packs the codec workers are filling: each one's file, and its parts' appends, in order. */
  private readonly workerPacks = new Map<string, { writer: PartWriter; written: Promise<void> }>();

  /** What its reads weigh towards starting another codec worker: 'with-parent' once the archiver has a parent. */
  backupWork: BackupWork = 'first';

  constructor(private readonly repo: Repository) {
    this.builders = { [BlobType.Data]: repo.packBuilder(), [BlobType.Tree]: repo.packBuilder() };
  }

  /** Why writing to the repository failed, once it has: every later save throws it. */
  get writeFailure(): Error | undefined {
    return this.failure;
  }

  /**
   * Stores a blob unless the repository already has it; resolves true when it was new. `dictionary`: a blob
   * compressed with this dictionary (a blob of the repository, given to the codec workers already:
   * Repository.loadDictionaries), in a pack of that dictionary's.
   */
  async save(type: BlobType, id: Buffer, raw: Uint8Array, dictionary?: string): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.repo.reusable(id)) return false;
    const hex = toHex(id);
    if (this.pending.has(hex)) return false;
    this.pending.add(hex);
    await this.room(raw.byteLength);
    let b = this.batch;
    if (b && (b.used + raw.byteLength > b.data.byteLength || b.dictionary !== dictionary)) {
      this.dispatch();
      b = undefined;
    }
    if (!b) {
      b = this.batch = { data: new Uint8Array(Math.max(BATCH_BYTES, raw.byteLength)), used: 0, ids: [], types: [], lengths: [], ...(dictionary !== undefined ? { dictionary } : {}) };
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
   * Stores a file below the file chunker's maximum, read and cut on a worker; resolves with its blob ids and
   * size as read. `tooBig` when it grew past `params.max` since it was stat'ed: the caller reads it window by window.
   */
  async saveFile(path: string, expectedSize: number, params: ChunkerParams): Promise<SavedFile> {
    await this.room(expectedSize);
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
    const pool = this.repo.codec();
    const session = this.sessionOn(pool);
    let answered = false;
    const job = pool.hashFiles(b.paths, b.bytes, b.params, this.backupWork).then((r) => {
      const keep = new Uint8Array(r.raws.length);
      let piece = 0;
      for (let i = 0; i < b.paths.length; i++) {
        const w = b.waiters[i];
        const first = piece;
        piece += r.pieces[i];
        if (r.errors[i]) {
          const err = new Error(`reading ${b.paths[i]}: ${r.errors[i]}`) as NodeJS.ErrnoException;
          err.code = r.errors[i]!.split(':')[0];
          w.reject(err);
        } else {
          const ids: Buffer[] = [];
          for (let k = first; k < piece; k++) {
            const id = Buffer.from(r.ids.subarray(32 * k, 32 * (k + 1)));
            keep[k] = this.claim(id) ? 1 : 0;
            ids.push(id);
          }
          w.resolve({ ids, size: r.sizes[i], tooBig: r.tooBig[i] });
        }
      }
      answered = true;
      return pool.store(r, keep, session, this.repo.config.packSize);
    });
    this.track(
      job
        .catch((err: unknown) => {
          if (!answered) for (const w of b.waiters) w.reject(err instanceof Error ? err : new Error(String(err)));
          throw err;
        })
        .finally(() => {
          this.queued -= b.bytes;
          this.wake();
        }),
    );
  }

  /**
   * Stores a large file window by window on the codec workers (read, cut and hashed there, then the new
   * chunks compressed there); resolves with its data blob ids in order and the bytes read.
   */
  async saveLargeFile(path: string, params: ChunkerParams, onBytes: (n: number) => void, expectedSize = Infinity): Promise<{ ids: Buffer[]; size: number }> {
    const pool = this.repo.codec();
    const session = this.sessionOn(pool);
    const ids: Buffer[] = [];
    let pos = 0;
    for (;;) {
      // What the worker holds for this window: the window and its lookahead, or the rest of the file.
      const held = Math.max(0, Math.min(WINDOW + params.max, expectedSize - pos));
      await this.room(held);
      let r;
      try {
        r = await pool.hashWindow(path, pos, WINDOW, params, this.backupWork);
      } catch (err) {
        this.queued -= held;
        this.wake();
        throw err;
      }
      const keep = new Uint8Array(r.raws.length);
      for (let i = 0; i < r.raws.length; i++) {
        const id = Buffer.from(r.ids.subarray(32 * i, 32 * (i + 1)));
        keep[i] = this.claim(id) ? 1 : 0;
        ids.push(id);
      }
      this.track(
        pool.store(r, keep, session, this.repo.config.packSize).finally(() => {
          this.queued -= held;
          this.wake();
        }),
      );
      onBytes(r.next - pos);
      pos = r.next;
      if (r.eof) return { ids, size: pos };
    }
  }

  /** Whether this backup is to store the blob: neither the repository nor this backup has it yet. */
  private claim(id: Buffer): boolean {
    if (this.repo.reusable(id)) return false;
    const hex = toHex(id);
    if (this.pending.has(hex)) return false;
    this.pending.add(hex);
    return true;
  }

  /** This saver's session on the codec pool, where the workers assemble its data packs. */
  private sessionOn(pool: CodecPool): number {
    this.session ??= pool.openSession((m) => (m.op === 'part' ? this.appendPart(m) : this.commitWorkerPack(m)), this.repo.pruneMarks.keys());
    return this.session;
  }

  /**
   * A part of a data pack a codec worker is filling: appended to the pack's file from its slot, and the slot
   * freed, whatever happened (the worker may be waiting for it).
   */
  private appendPart(part: PackPart): void {
    let w = this.workerPacks.get(part.pack);
    if (!w) this.workerPacks.set(part.pack, (w = { writer: this.repo.packParts(), written: Promise.resolve() }));
    const writer = w.writer;
    w.written = w.written
      .then(() => (this.failure ? undefined : writer.append(Buffer.from(part.body, 0, part.bytes))))
      .finally(() => releasePack(part));
    this.track(w.written);
  }

  /** The end of a worker's data pack (all its parts appended before): its header appended, committed under its name, indexed. */
  private commitWorkerPack(p: FinishedPack): void {
    const w = this.workerPacks.get(p.pack);
    this.workerPacks.delete(p.pack);
    if (!w) return;
    const ids = Buffer.from(p.ids.buffer, p.ids.byteOffset, p.ids.byteLength);
    const entries: PackEntry[] = [];
    let offset = 1;
    for (let i = 0; i < p.lengths.length; i++) {
      entries.push({ id: Buffer.from(ids.subarray(32 * i, 32 * (i + 1))), type: BlobType.Data, zstd: p.zstd[i] === 1, offset, length: p.lengths[i], rawLength: p.raws[i] });
      offset += p.lengths[i];
    }
    const size = offset + p.header.byteLength;
    this.packWrites++;
    this.track(
      (async () => {
        try {
          await w.written;
          if (this.failure) throw this.failure;
          await w.writer.append(p.header);
          await w.writer.commit(p.id);
        } catch (err) {
          await w.writer.abort();
          throw err;
        } finally {
          this.packWrites--;
          this.wake();
        }
        this.indexWritten(p.id, entries, size);
      })(),
    );
  }

  /** Everything saved so far is in written packs and indexed once this resolves. */
  async flush(): Promise<void> {
    this.dispatchFiles();
    this.dispatch();
    while (this.work.size > 0) await Promise.all([...this.work]);
    if (this.session !== undefined) {
      // The workers' open packs, finished whatever happened (a failed backup must not leave them there).
      const pool = this.repo.codec();
      const session = this.session;
      this.session = undefined;
      this.track(pool.finishPacks(session));
      while (this.work.size > 0) await Promise.all([...this.work]);
      pool.closeSession(session);
      // Packs whose end never came (a worker failed): nothing of them stays.
      for (const w of this.workerPacks.values()) await w.writer.abort();
      this.workerPacks.clear();
    }
    if (this.failure) throw this.failure;
    for (const type of [BlobType.Data, BlobType.Tree]) if (this.builders[type].blobCount > 0) this.track(this.writePack(type));
    for (const [dictionary, builder] of this.dictionaryBuilders) if (builder.blobCount > 0) this.track(this.writePack(BlobType.Data, dictionary));
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
      .compressPacked(b.data, b.lengths, b.dictionary)
      .then((r) => {
        this.queued -= b.used;
        this.wake();
        for (let i = 0; i < b.ids.length; i++) {
          const type = b.types[i];
          const builder = this.builderFor(type, b.dictionary);
          // Tree packs fill slowly (they are written last): copy their small blobs out of the batch's
          // result buffer, or every batch buffer would stay alive until the end of the backup.
          const stored = type === BlobType.Tree ? Buffer.from(r.outputs[i]) : r.outputs[i];
          // A blob that did not shrink is stored raw, without its dictionary, in the dictionary's pack all the same.
          builder.add(b.ids[i], type, stored, r.compressed[i], b.lengths[i], r.compressed[i] ? b.dictionary : undefined);
          if (builder.size >= this.repo.config.packSize) this.track(this.writePack(type, b.dictionary));
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

  private builderFor(type: BlobType, dictionary: string | undefined): PackBuilder {
    if (dictionary === undefined) return this.builders[type];
    let b = this.dictionaryBuilders.get(dictionary);
    if (!b) this.dictionaryBuilders.set(dictionary, (b = this.repo.packBuilder()));
    return b;
  }

  private async writePack(type: BlobType, dictionary?: string): Promise<void> {
    const builder = this.builderFor(type, dictionary);
    if (dictionary === undefined) this.builders[type] = this.repo.packBuilder();
    else this.dictionaryBuilders.set(dictionary, this.repo.packBuilder());
    // One buffer for the pack, hashed on libuv's pool (WebCrypto) rather than on the main thread.
    let pack = Buffer.concat(builder.finish());
    let id = toHex(Buffer.from(await webcrypto.subtle.digest('SHA-256', pack)));
    if (this.repo.pruneMarks.has(id)) {
      // Byte for byte a pack a prune marked for deletion (the same blobs stored again): written under that
      // name it would be the very file the prune deletes once the grace period ends, perhaps before this
      // backup's snapshot exists. Its first blob once more makes it a new file.
      const first = builder.entries[0];
      builder.add(first.id, first.type, Buffer.from(pack.subarray(first.offset, first.offset + first.length)), first.zstd, first.rawLength, first.dictionary);
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
    this.indexWritten(id, builder.entries, size, dictionary);
  }

  /** A pack just written: its blobs indexed in memory, and in the next index file. */
  private indexWritten(id: string, entries: PackEntry[], size: number, dictionary?: string): void {
    for (const e of entries) {
      this.repo.indexBlob(e.id, { ...e, pack: id });
      this.pending.delete(toHex(e.id));
    }
    this.stats.blobsNew += entries.length;
    this.stats.bytesAdded += size;
    this.unindexed.push({ id, ...(dictionary !== undefined ? { dictionary } : {}), blobs: entries });
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

  /**
   * Waits until the queue and the pack writes have room (see MAX_QUEUED), then counts `bytes` as queued before
   * it returns: callers let through at once cannot all take the same room. Throws a write failure.
   */
  private async room(bytes: number): Promise<void> {
    if (this.failure) throw this.failure;
    while ((this.queued > MAX_QUEUED || this.packWrites >= MAX_PACK_WRITES) && !this.failure) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
    this.queued += bytes;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}
