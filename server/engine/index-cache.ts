import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobType, RECORD_BYTES, type BlobIndex, type BlobLocation } from './blob-index.js';
import { EngineError } from './errors.js';
import { repositoryCacheDir, writeCacheFileWith } from './files-cache.js';
import { ID_BYTES, fromHex, toHex } from './hash.js';

/**
 * The index cache: every blob's location as the repository's index files give it, kept on the machine that
 * restores, sorted by blob id in buckets, so that a restore of one mailbox looks up its few hundred blobs with
 * a few small reads instead of reading, checking and hashing every index file of the repository (whose size
 * grows with the installation, not with the mailbox). It is no part of the repository: a restore without it
 * reads the index files, as every other command does.
 *
 * It names the index files it was made from. A restore uses it only when each of them is still in the
 * repository (a prune that rewrote some makes it stale: it is made again); index files it does not name (later
 * backups) are read as usual, on top of it. Each bucket and each pack entry carries a checksum, checked when it
 * is read: a cache damaged anywhere a lookup goes is dropped, and the index files are read instead. What it
 * says is never the last word: the restore checks every blob it reads against its id, as it always does.
 *
 * File (little-endian): MAGIC; a header (index files covered: count u32 and their ids, 32 bytes each, sorted;
 * blob count u32; pack count u32; bucket bits u32; the SHA-256 of all the records, then of the bucket table)
 * and its SHA-256; the bucket table, 2^bits + 1 entries of
 * 12 bytes (first record u32, then the first 8 bytes of SHA-256(bucket u32, first u32, end u32, its records);
 * the last entry only ends the table); the records, each an index file's 46-byte blob record and its pack's
 * ordinal u32, sorted by id; the packs, each its id, its dictionary's id (zeros: none) and the first 8 bytes
 * of SHA-256(ordinal u32, id, dictionary).
 */
const MAGIC = Buffer.from('bm-dataprotect index cache 2\n');
const ENTRY_BYTES = RECORD_BYTES + 4;
const TABLE_ENTRY = 12;
const PACK_ENTRY = 2 * ID_BYTES + 8;
const CHECK_BYTES = 8;
/** A bucket table up to this size (some 20,000 buckets, 700,000 blobs) is read at once, not entry by entry. */
const TABLE_READ_WHOLE = 256 * 1024;
/** A cache whose records are up to this size (some 300,000 blobs) may be read whole for a large lookup. */
const RECORDS_READ_WHOLE = 16 * 1024 * 1024;
/** Records written at a time when the cache is made (some 3 MiB). */
const WRITE_SLICE = 64 * 1024;
/** Blobs per bucket aimed at: a lookup reads about this many records (a few KiB). */
const PER_BUCKET = 32;

/** The cache of a repository below the cache directory (defaultCacheDir()). */
export function indexCachePath(cacheDir: string, repositoryId: string): string {
  return join(repositoryCacheDir(cacheDir, repositoryId), 'index');
}

/** The cache is not what it says it is: the caller drops it and reads the index files instead. */
export class IndexCacheDamagedError extends EngineError {}

export class IndexCache {
  private readonly buckets = new Map<number, Buffer>();
  private readonly packs = new Map<number, { pack: string; dictionary?: string }>();
  /** The bucket table, read whole at the first lookup when it is small (TABLE_READ_WHOLE); else entry by entry. */
  private table: Buffer | undefined;
  /** Every record, read at once (and checked at once) for a lookup of many blobs in a small cache (see `expect`). */
  private records: Buffer | undefined;

  private constructor(
    private fd: number,
    readonly path: string,
    /** The index files (ids) whose blobs it holds. */
    readonly covers: ReadonlySet<string>,
    readonly blobs: number,
    private readonly packCount: number,
    private readonly bits: number,
    private readonly tableAt: number,
    private readonly recordsDigest: Buffer,
    private readonly tableDigest: Buffer,
  ) {}

  private get recordsAt(): number {
    return this.tableAt + (2 ** this.bits + 1) * TABLE_ENTRY;
  }

  private get packsAt(): number {
    return this.recordsAt + this.blobs * ENTRY_BYTES;
  }

  /**
   * The cache at `path` when it is there, belongs to this user, is writable by no one else and its header
   * holds together; null otherwise (`notice` says why, unless it is simply missing).
   */
  static open(path: string, notice: (m: string) => void = () => {}): IndexCache | null {
    let fd: number;
    try {
      fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') notice(`index cache ${path} not used: ${(err as Error).message}`);
      return null;
    }
    try {
      const st = fs.fstatSync(fd);
      // Anyone else who could write it could send a restore to other packs (which its checks would then refuse).
      if (!st.isFile() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o022) !== 0) throw new Error('it must be a file of this user that no one else can write');
      const head = readAt(fd, 0, MAGIC.length + 4);
      // Another version's (an older program's): made again, without a word.
      if (!head.subarray(0, MAGIC.length).equals(MAGIC)) {
        fs.closeSync(fd);
        return null;
      }
      const covered = head.readUInt32LE(MAGIC.length);
      const headerBytes = 4 + covered * ID_BYTES + 12 + 64;
      if (MAGIC.length + headerBytes + 32 > st.size) throw new Error('truncated');
      const header = readAt(fd, MAGIC.length, headerBytes + 32);
      if (!sha256(header.subarray(0, headerBytes)).equals(header.subarray(headerBytes))) throw new Error('header checksum does not match (damaged)');
      const covers = new Set<string>();
      for (let i = 0; i < covered; i++) covers.add(toHex(header.subarray(4 + i * ID_BYTES, 4 + (i + 1) * ID_BYTES)));
      const at = 4 + covered * ID_BYTES;
      const blobs = header.readUInt32LE(at);
      const packs = header.readUInt32LE(at + 4);
      const bits = header.readUInt32LE(at + 8);
      if (bits > 24) throw new Error(`${bits} bucket bits`);
      const cache = new IndexCache(fd, path, covers, blobs, packs, bits, MAGIC.length + headerBytes + 32, Buffer.from(header.subarray(at + 12, at + 44)), Buffer.from(header.subarray(at + 44, at + 76)));
      if (cache.packsAt + packs * PACK_ENTRY !== st.size) throw new Error('size does not match its header (damaged)');
      return cache;
    } catch (err) {
      fs.closeSync(fd);
      notice(`index cache ${path} not used: ${(err as Error).message}`);
      return null;
    }
  }

  /**
   * A blob's location, or undefined when none of the index files it covers has it. Throws
   * IndexCacheDamagedError when what it reads does not check.
   */
  get(id: Uint8Array): BlobLocation | undefined {
    const records = this.bucketOf(id);
    const at = find(records, id);
    return at < 0 ? undefined : this.location(records, at);
  }

  /** A blob's raw length alone, or -1: as `get`, without making its location (a file's layout needs every one). */
  rawLength(id: Uint8Array): number {
    const records = this.bucketOf(id);
    const at = find(records, id);
    return at < 0 ? -1 : records.readUInt32LE(at + ID_BYTES + 10);
  }

  /**
   * Told that `lookups` blobs are about to be looked up: when their buckets would come to a quarter of a cache
   * of at most RECORDS_READ_WHOLE, every record is read and checked at once (one read and one hash instead of
   * hundreds). Throws IndexCacheDamagedError when they do not check.
   */
  expect(lookups: number): void {
    const bytes = this.blobs * ENTRY_BYTES;
    if (this.records || bytes > RECORDS_READ_WHOLE || lookups * PER_BUCKET * ENTRY_BYTES < bytes / 4) return;
    const table = readAt(this.fd, this.tableAt, (2 ** this.bits + 1) * TABLE_ENTRY);
    const records = readAt(this.fd, this.recordsAt, bytes);
    // One hash of them all, not one per bucket: hundreds of small hashes cost more than the read.
    if (!sha256(table).equals(this.tableDigest) || !sha256(records).equals(this.recordsDigest)) throw new IndexCacheDamagedError(`index cache ${this.path}: records do not match their checksum (damaged)`);
    this.table = table;
    this.records = records;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /**
   * Writes the cache of `index` (loaded whole from the index files `covers`), owner-only, through a temp file
   * renamed over the old one: a restore running meanwhile keeps the file it opened. The records are written
   * a slice of whole buckets at a time, so that making the cache of a large repository holds no second copy
   * of its index; the header and bucket table, which hold their checksums, are written last, at the start.
   */
  static async write(path: string, index: BlobIndex, covers: Iterable<string>): Promise<void> {
    const names = [...covers].sort();
    const bits = bucketBits(index.size);
    const header = Buffer.alloc(4 + names.length * ID_BYTES + 12 + 64);
    let o = header.writeUInt32LE(names.length, 0);
    for (const n of names) o += fromHex(n).copy(header, o);
    o = header.writeUInt32LE(index.size, o);
    o = header.writeUInt32LE(index.packs.length, o);
    o = header.writeUInt32LE(bits, o);
    const { order, starts } = index.sortedEntries(bits);
    const buckets = 2 ** bits;
    const table = Buffer.alloc((buckets + 1) * TABLE_ENTRY);
    table.writeUInt32LE(starts[buckets], buckets * TABLE_ENTRY);
    const packs = Buffer.alloc(index.packs.length * PACK_ENTRY);
    index.packs.forEach((pack, ordinal) => {
      const at = ordinal * PACK_ENTRY;
      fromHex(pack).copy(packs, at);
      const dictionary = index.dictionaryOfPack(ordinal);
      if (dictionary !== undefined) fromHex(dictionary).copy(packs, at + ID_BYTES);
      packCheck(ordinal, packs.subarray(at, at + 2 * ID_BYTES)).copy(packs, at + 2 * ID_BYTES);
    });
    await writeCacheFileWith(path, async (fh) => {
      const recordsHash = createHash('sha256');
      const slice = Buffer.allocUnsafe(WRITE_SLICE * ENTRY_BYTES);
      let at = MAGIC.length + header.length + 32 + table.length;
      for (let b = 0; b < buckets; ) {
        let end = b + 1;
        while (end < buckets && starts[end + 1] - starts[b] <= WRITE_SLICE) end++;
        const first = starts[b];
        const n = starts[end] - first;
        const records = n <= WRITE_SLICE ? slice.subarray(0, n * ENTRY_BYTES) : Buffer.allocUnsafe(n * ENTRY_BYTES);
        for (let i = 0; i < n; i++) records.writeUInt32LE(index.copyRecord(order[first + i], records, i * ENTRY_BYTES), i * ENTRY_BYTES + RECORD_BYTES);
        for (let k = b; k < end; k++) {
          table.writeUInt32LE(starts[k], k * TABLE_ENTRY);
          bucketCheck(k, starts[k], starts[k + 1], records.subarray((starts[k] - first) * ENTRY_BYTES, (starts[k + 1] - first) * ENTRY_BYTES)).copy(table, k * TABLE_ENTRY + 4);
        }
        recordsHash.update(records);
        await writeAt(fh, records, at);
        at += records.length;
        b = end;
      }
      await writeAt(fh, packs, at);
      o += recordsHash.digest().copy(header, o);
      sha256(table).copy(header, o);
      await writeAt(fh, Buffer.concat([MAGIC, header, sha256(header), table]), 0);
    });
  }

  private bucketOf(id: Uint8Array): Buffer {
    return this.bucket(this.bits === 0 ? 0 : (((id[0] << 24) | (id[1] << 16) | (id[2] << 8) | id[3]) >>> 0) >>> (32 - this.bits));
  }

  /** The records of bucket `b`, checked (kept for the next lookup there). */
  private bucket(b: number): Buffer {
    const known = this.buckets.get(b);
    if (known) return known;
    const tableBytes = (2 ** this.bits + 1) * TABLE_ENTRY;
    if (!this.table && tableBytes <= TABLE_READ_WHOLE) this.table = readAt(this.fd, this.tableAt, tableBytes);
    const entry = this.table ? this.table.subarray(b * TABLE_ENTRY, (b + 2) * TABLE_ENTRY) : readAt(this.fd, this.tableAt + b * TABLE_ENTRY, 2 * TABLE_ENTRY);
    const start = entry.readUInt32LE(0);
    const end = entry.readUInt32LE(TABLE_ENTRY);
    if (start > end || end > this.blobs) throw new IndexCacheDamagedError(`index cache ${this.path}: bucket ${b} is out of bounds (damaged)`);
    if (this.records) return this.records.subarray(start * ENTRY_BYTES, end * ENTRY_BYTES);
    const records = readAt(this.fd, this.recordsAt + start * ENTRY_BYTES, (end - start) * ENTRY_BYTES);
    if (!bucketCheck(b, start, end, records).equals(entry.subarray(4, 4 + CHECK_BYTES))) throw new IndexCacheDamagedError(`index cache ${this.path}: bucket ${b} does not match its checksum (damaged)`);
    // A restore of everything visits every bucket: what is kept stays bounded.
    if (this.buckets.size >= 4096) this.buckets.clear();
    this.buckets.set(b, records);
    return records;
  }

  private location(records: Buffer, at: number): BlobLocation {
    const ordinal = records.readUInt32LE(at + RECORD_BYTES);
    const { pack, dictionary } = this.pack(ordinal);
    const code = records[at + ID_BYTES + 1];
    if (code > 2 || (code === 2 && dictionary === undefined)) throw new IndexCacheDamagedError(`index cache ${this.path}: a blob of compression ${code} in pack ${pack.slice(0, 12)} (damaged)`);
    return {
      pack,
      type: records[at + ID_BYTES] === 1 ? BlobType.Tree : BlobType.Data,
      zstd: code !== 0,
      ...(code === 2 ? { dictionary } : {}),
      offset: records.readUInt32LE(at + ID_BYTES + 2),
      length: records.readUInt32LE(at + ID_BYTES + 6),
      rawLength: records.readUInt32LE(at + ID_BYTES + 10),
    };
  }

  private pack(ordinal: number): { pack: string; dictionary?: string } {
    const known = this.packs.get(ordinal);
    if (known) return known;
    if (ordinal >= this.packCount) throw new IndexCacheDamagedError(`index cache ${this.path}: pack ${ordinal} of ${this.packCount} (damaged)`);
    const entry = readAt(this.fd, this.packsAt + ordinal * PACK_ENTRY, PACK_ENTRY);
    if (!packCheck(ordinal, entry.subarray(0, 2 * ID_BYTES)).equals(entry.subarray(2 * ID_BYTES))) throw new IndexCacheDamagedError(`index cache ${this.path}: pack ${ordinal} does not match its checksum (damaged)`);
    const d = entry.subarray(ID_BYTES, 2 * ID_BYTES);
    const p = { pack: toHex(entry.subarray(0, ID_BYTES)), ...(d.some((x) => x !== 0) ? { dictionary: toHex(d) } : {}) };
    this.packs.set(ordinal, p);
    return p;
  }
}

/** Bits of the bucket number: about PER_BUCKET blobs a bucket, from 1 bucket to 2^20. */
function bucketBits(blobs: number): number {
  let bits = 0;
  while (bits < 20 && blobs / 2 ** bits > PER_BUCKET) bits++;
  return bits;
}

/** Where the record of `id` starts in a bucket's sorted records, or -1. */
function find(records: Buffer, id: Uint8Array): number {
  let lo = 0;
  let hi = records.length / ENTRY_BYTES;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareId(records, mid * ENTRY_BYTES, id);
    if (c === 0) return mid * ENTRY_BYTES;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/** The id at `records[at..]` against `id`, byte by byte in place (no view made per comparison). */
function compareId(records: Uint8Array, at: number, id: Uint8Array): number {
  for (let k = 0; k < ID_BYTES; k++) {
    const d = records[at + k] - id[k];
    if (d !== 0) return d;
  }
  return 0;
}

function bucketCheck(b: number, start: number, end: number, records: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32LE(b, 0);
  head.writeUInt32LE(start, 4);
  head.writeUInt32LE(end, 8);
  return createHash('sha256').update(head).update(records).digest().subarray(0, CHECK_BYTES);
}

function packCheck(ordinal: number, entry: Uint8Array): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(ordinal, 0);
  return createHash('sha256').update(head).update(entry).digest().subarray(0, CHECK_BYTES);
}

function sha256(b: Uint8Array): Buffer {
  return createHash('sha256').update(b).digest();
}

/** `length` bytes at `position`; a file shorter than that is damage. */
/** Writes all of `data` at `position` (a short write is continued). */
async function writeAt(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (!(bytesWritten > 0)) throw new EngineError(`writing the index cache: short write at ${position + done}`);
    done += bytesWritten;
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let done = 0; done < length; ) {
    const n = fs.readSync(fd, out, done, length - done, position + done);
    if (n === 0) throw new IndexCacheDamagedError(`index cache: truncated (wanted ${length} bytes at ${position})`);
    done += n;
  }
  return out;
}
