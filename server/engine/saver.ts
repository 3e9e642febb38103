import { BlobType } from './blob-index.js';
import { sha256, toHex } from './hash.js';
import type { IndexFile } from './index-file.js';
import { PackBuilder, type PackEntry } from './pack.js';
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
  private readonly builders: Record<BlobType, PackBuilder> = { [BlobType.Data]: new PackBuilder(), [BlobType.Tree]: new PackBuilder() };
  private readonly work = new Set<Promise<void>>();
  private unindexed: IndexFile['packs'] = [];
  private unindexedBlobs = 0;
  private indexing: Promise<void> = Promise.resolve();
  private queued = 0;
  private packWrites = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;

  constructor(private readonly repo: Repository) {}

  /** Stores a blob unless the repository already has it; resolves true when it was new. */
  async save(type: BlobType, id: Buffer, raw: Uint8Array): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.repo.index.has(id)) return false;
    const hex = toHex(id);
    if (this.pending.has(hex)) return false;
    this.pending.add(hex);
    while ((this.queued > MAX_QUEUED || this.packWrites >= MAX_PACK_WRITES) && !this.failure) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
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

  /** Everything saved so far is in written packs and indexed once this resolves. */
  async flush(): Promise<void> {
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
          builder.add(b.ids[i], type, r.outputs[i], r.compressed[i], b.lengths[i]);
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
    this.builders[type] = new PackBuilder();
    const parts = builder.finish();
    const id = toHex(sha256(parts));
    let size = 0;
    for (const p of parts) size += p.length;
    this.packWrites++;
    try {
      await this.repo.storage.write('data', id, parts);
    } finally {
      this.packWrites--;
      this.wake();
    }
    const entries: PackEntry[] = builder.entries;
    for (const e of entries) {
      this.repo.index.add(e.id, { ...e, pack: id });
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

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}
