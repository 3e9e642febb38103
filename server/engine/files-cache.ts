import { createHash, randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ID_BYTES, fromHex, isHexId, toHex } from './hash.js';

/**
 * The files cache: what the previous backup of a (server, tag) found in each file, kept on the machine that
 * runs the backup (as borg's files cache), so that an incremental run neither decodes the parent snapshot's
 * trees nor reads an unchanged file. Keyed by (device, inode); an entry holds the size, mtime and ctime the
 * file had when it was read, a hash of its path, and its data blob ids.
 *
 * Safety: the cache only ever says "these blob ids are this file's content". It is used only when it was
 * written by the backup that made the parent snapshot (its id is in the file), only from a file owned by this
 * user that no one else can write, and only when its checksum holds; a blob it names is reused only when the
 * index has it. A file is taken as unchanged only with the same device, inode, size, mtime **and ctime** (the
 * kernel sets ctime at every write, and no one can set it back, unlike mtime); a file whose ctime was within
 * RACY_MS of the moment it was stat'ed is not recorded, since a write in the same clock tick after its stat
 * would leave its ctime as it was (a tick is a few milliseconds; the margin also covers an NFS server's clock
 * a little behind this one). Anything wrong with the cache makes the backup read the files.
 *
 * File: MAGIC, SHA-256 of the body, body = snapshot id (32 bytes), entry count (u32 LE), the entries (RECORD
 * bytes each: device, inode, size as u64 LE, mtime and ctime as i64 LE nanoseconds, path hash u32 LE, blob
 * count u32 LE), then every entry's blob ids (32 bytes each) in entry order.
 */
const MAGIC = Buffer.from('bm-dataprotect files cache 1\n');
const RECORD = 48;
const HEADER = MAGIC.length + ID_BYTES;
/** Timestamps are coarse (a clock tick, up to 10 ms): a file changed less than this before its stat is not recorded. */
const RACY_MS = 1000;

/** Where caches live: DP_CACHE_DIR, else $XDG_CACHE_HOME/bm-dataprotect, else ~/.cache/bm-dataprotect. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DP_CACHE_DIR) return resolve(env.DP_CACHE_DIR);
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'bm-dataprotect');
}

/** The files cache of one (server, tag) of a repository, below the cache directory. */
export function filesCachePath(cacheDir: string, repositoryId: string, server: string, tag: string): string {
  const key = createHash('sha256').update(`${server}\0${tag}`).digest('hex').slice(0, 32);
  return join(cacheDir, repositoryId.replace(/[^0-9a-f]/g, ''), 'files', key);
}

/** FNV-1a of a snapshot path: tells a file at its old path from one moved elsewhere. */
export function pathHash(path: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface CachedFile {
  /** Data blob ids (hex). */
  content: string[];
  /** Same size, mtime and ctime: the file is as it was read. */
  unchanged: boolean;
  /** Same size and mtime (a rename changes only the ctime). */
  sameData: boolean;
  /** It was at the same path. */
  samePath: boolean;
}

function slotOf(dev: number, ino: number): number {
  return Math.imul((ino ^ Math.imul(dev, 0x9e3779b1)) | 0, 0x85ebca6b) >>> 0;
}

/** A files cache as read: lookups by (device, inode) over the file's bytes, nothing allocated per entry. */
export class FilesCache {
  private readonly mask: number;
  /** Entry number + 1 per slot (0: empty). */
  private readonly slots: Int32Array;
  private readonly paths: Uint32Array;
  /** Index of each entry's first blob id. */
  private readonly firstId: Uint32Array;

  private constructor(
    private readonly records: Buffer,
    private readonly ids: Buffer,
    readonly count: number,
  ) {
    let cap = 1024;
    while (cap * 0.6 < count) cap *= 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap);
    this.paths = new Uint32Array(cap);
    this.firstId = new Uint32Array(count + 1);
    for (let e = 0; e < count; e++) {
      const at = e * RECORD;
      this.firstId[e + 1] = this.firstId[e] + records.readUInt32LE(at + 44);
      let s = slotOf(Number(records.readBigUInt64LE(at)), Number(records.readBigUInt64LE(at + 8))) & this.mask;
      while (this.slots[s] !== 0) s = (s + 1) & this.mask;
      this.slots[s] = e + 1;
      // Path hashes in a set of their own (0 stands for an empty place: hash 0 is stored as 1).
      const p = records.readUInt32LE(at + 40) || 1;
      let q = p & this.mask;
      while (this.paths[q] !== 0 && this.paths[q] !== p) q = (q + 1) & this.mask;
      this.paths[q] = p;
    }
    if (this.firstId[count] * ID_BYTES !== ids.length) throw new Error('blob ids do not match the entries');
  }

  /**
   * Reads the cache written with snapshot `snapshotId`; null when there is none, when it belongs to another
   * snapshot, or when it cannot be trusted (`notice` says why): the backup then reads the parent's trees.
   */
  static async load(path: string, snapshotId: string, notice: (m: string) => void = () => {}): Promise<FilesCache | null> {
    let file: Buffer;
    try {
      const fh = await open(path, 'r');
      try {
        const st = await fh.stat();
        // Anyone else who could write it could make a file of the next snapshot hold another file's content.
        if ((process.getuid && st.uid !== process.getuid()) || (st.mode & 0o022) !== 0) {
          notice(`files cache ${path} not used: it must belong to this user and be writable by no one else`);
          return null;
        }
        file = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') notice(`files cache ${path} not used: ${(err as Error).message}`);
      return null;
    }
    try {
      if (file.length < HEADER + ID_BYTES + 4 || !file.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not a files cache of this version');
      const body = file.subarray(HEADER);
      if (!createHash('sha256').update(body).digest().equals(file.subarray(MAGIC.length, HEADER))) throw new Error('checksum does not match (damaged)');
      if (toHex(body.subarray(0, ID_BYTES)) !== snapshotId) return null;
      const count = body.readUInt32LE(ID_BYTES);
      const start = ID_BYTES + 4;
      if (start + count * RECORD > body.length) throw new Error('truncated');
      return new FilesCache(body.subarray(start, start + count * RECORD), body.subarray(start + count * RECORD), count);
    } catch (err) {
      notice(`files cache ${path} not used: ${(err as Error).message}`);
      return null;
    }
  }

  /** What the cache knows of the file with this stat, found at `path` (its pathHash) now. */
  lookup(st: BigIntStats, path: number): CachedFile | undefined {
    const r = this.records;
    let s = slotOf(Number(st.dev), Number(st.ino)) & this.mask;
    for (;;) {
      const e = this.slots[s] - 1;
      if (e < 0) return undefined;
      const at = e * RECORD;
      if (r.readBigUInt64LE(at + 8) === st.ino && r.readBigUInt64LE(at) === st.dev) {
        const sameData = r.readBigUInt64LE(at + 16) === st.size && r.readBigInt64LE(at + 24) === st.mtimeNs;
        const content: string[] = [];
        for (let i = this.firstId[e]; i < this.firstId[e + 1]; i++) content.push(this.ids.toString('hex', i * ID_BYTES, (i + 1) * ID_BYTES));
        return { content, sameData, unchanged: sameData && r.readBigInt64LE(at + 32) === st.ctimeNs, samePath: r.readUInt32LE(at + 40) === path };
      }
      s = (s + 1) & this.mask;
    }
  }

  /** Whether a file was at this path (its pathHash): for the summary, a file read again is "changed", not "new". */
  hadPath(path: number): boolean {
    const p = path || 1;
    for (let q = p & this.mask; this.paths[q] !== 0; q = (q + 1) & this.mask) if (this.paths[q] === p) return true;
    return false;
  }
}

/** The cache the running backup writes for the next one, entry by entry as files are done. */
export class FilesCacheWriter {
  private records: Buffer = Buffer.alloc(64 * RECORD);
  private ids: Buffer = Buffer.alloc(64 * ID_BYTES);
  private count = 0;
  private idCount = 0;
  /** Records that the file with this stat, taken at `statAt` (ms, at or before the stat), at `path` (its pathHash), holds these blobs. */
  add(st: BigIntStats, statAt: number, path: number, content: readonly string[]): void {
    if (st.ctimeNs >= BigInt(statAt - RACY_MS) * 1_000_000n) return;
    for (const id of content) if (!isHexId(id)) return;
    if ((this.count + 1) * RECORD > this.records.length) this.records = grown(this.records, (this.count + 1) * RECORD);
    if ((this.idCount + content.length) * ID_BYTES > this.ids.length) this.ids = grown(this.ids, (this.idCount + content.length) * ID_BYTES);
    const at = this.count++ * RECORD;
    const r = this.records;
    r.writeBigUInt64LE(st.dev, at);
    r.writeBigUInt64LE(st.ino, at + 8);
    r.writeBigUInt64LE(st.size, at + 16);
    r.writeBigInt64LE(st.mtimeNs, at + 24);
    r.writeBigInt64LE(st.ctimeNs, at + 32);
    r.writeUInt32LE(path, at + 40);
    r.writeUInt32LE(content.length, at + 44);
    for (const id of content) this.ids.write(id, this.idCount++ * ID_BYTES, 'hex');
  }

  get size(): number {
    return this.count;
  }

  /** Writes the cache for the snapshot just saved: owner-only, through a temp file and a rename. */
  async save(path: string, snapshotId: string): Promise<void> {
    const head = Buffer.alloc(ID_BYTES + 4);
    fromHex(snapshotId).copy(head);
    head.writeUInt32LE(this.count, ID_BYTES);
    const parts = [head, this.records.subarray(0, this.count * RECORD), this.ids.subarray(0, this.idCount * ID_BYTES)];
    const digest = createHash('sha256');
    for (const p of parts) digest.update(p);
    const dir = dirname(path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Folders made earlier by someone's umask are tightened: the cache says what the user's files hold.
    await chmod(dir, 0o700);
    await chmod(dirname(dir), 0o700);
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writev([MAGIC, digest.digest(), ...parts]);
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}

function grown(b: Buffer, need: number): Buffer<ArrayBuffer> {
  const n = Buffer.alloc(Math.max(need, b.length * 2));
  b.copy(n);
  return n;
}
