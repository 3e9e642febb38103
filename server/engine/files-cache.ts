import { createHash, randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
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
 * RACY_MS of the moment it was stat'ed is recorded as racy, never trusted: a write in the same clock tick after
 * its stat would leave its ctime as it was (a tick is a few milliseconds; the margin also covers an NFS
 * server's clock a little behind this one). The next backup reads a racy file again, and counts it unmodified
 * only when it finds the same blobs (as git does with its racily clean entries). Anything wrong with the cache
 * makes the backup read the files.
 *
 * File (little-endian): MAGIC, SHA-256 of the body, body = snapshot id (32 bytes), entry count N (u32), N × 5
 * i64 (device, inode, size, mtime and ctime in nanoseconds), N × 3 u32 (path hash, number of blob ids, flags:
 * 1 = racy), then
 * every entry's blob ids (32 bytes each) in entry order. Host byte order would do as well (a cache never
 * leaves its machine); little-endian is what every platform Node runs the engine on has.
 */
const MAGIC = Buffer.from('bm-dataprotect files cache 2\n');
const HEADER = MAGIC.length + ID_BYTES;
/** Timestamps are coarse (a clock tick, up to 10 ms): a file changed less than this before its stat is racy. */
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
  return join(repositoryCacheDir(cacheDir, repositoryId), 'files', key);
}

/** One repository's folder of local caches (its id, hex digits only: nothing in it can leave the folder). */
export function repositoryCacheDir(cacheDir: string, repositoryId: string): string {
  return join(cacheDir, repositoryId.replace(/[^0-9a-f]/g, ''));
}

/** FNV-1a of a snapshot path: tells a file at its old path from one moved elsewhere. */
export function pathHash(path: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function slotOf(dev: number, ino: number): number {
  return Math.imul((ino ^ Math.imul(dev, 0x9e3779b1)) | 0, 0x85ebca6b) >>> 0;
}

/** Per entry: device, inode, size, mtime, ctime (i64 words; a value past 2^63 compares unequal: read again). */
const WORDS = 5;
/** Per entry: path hash, number of blob ids, flags (u32). */
const META = 3;
const RACY = 1;

/** A files cache as read: lookups by (device, inode) over typed arrays, nothing allocated per entry. */
export class FilesCache {
  private readonly mask: number;
  /** Entry number + 1 per slot (0: empty). */
  private readonly slots: Int32Array;
  private readonly paths: Uint32Array;
  /** Index of each entry's first blob id. */
  private readonly firstId: Uint32Array;

  private constructor(
    private readonly words: BigInt64Array,
    private readonly meta: Uint32Array,
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
      this.firstId[e + 1] = this.firstId[e] + meta[e * META + 1];
      let s = slotOf(Number(words[e * WORDS]), Number(words[e * WORDS + 1])) & this.mask;
      while (this.slots[s] !== 0) s = (s + 1) & this.mask;
      this.slots[s] = e + 1;
      // Path hashes in a set of their own (0 stands for an empty place: hash 0 is stored as 1).
      const p = meta[e * META] || 1;
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
      let at = ID_BYTES + 4;
      if (at + count * (WORDS * 8 + META * 4) > body.length) throw new Error('truncated');
      // Copied into arrays of their own: aligned, whatever the file's buffer.
      const words = new BigInt64Array(count * WORDS);
      new Uint8Array(words.buffer).set(body.subarray(at, (at += words.byteLength)));
      const meta = new Uint32Array(count * META);
      new Uint8Array(meta.buffer).set(body.subarray(at, (at += meta.byteLength)));
      return new FilesCache(words, meta, body.subarray(at), count);
    } catch (err) {
      notice(`files cache ${path} not used: ${(err as Error).message}`);
      return null;
    }
  }

  /**
   * The entry of the file with this stat (same device and inode), or -1. `reusable` says whether a blob may
   * be referenced (is in the index): an entry naming one that is not is of no use, and is not found.
   */
  find(st: BigIntStats, reusable: (id: Uint8Array) => boolean): number {
    const w = this.words;
    let s = slotOf(Number(st.dev), Number(st.ino)) & this.mask;
    for (;;) {
      const e = this.slots[s] - 1;
      if (e < 0) return -1;
      if (w[e * WORDS + 1] === st.ino && w[e * WORDS] === st.dev) {
        for (let i = this.firstId[e]; i < this.firstId[e + 1]; i++) if (!reusable(this.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES))) return -1;
        return e;
      }
      s = (s + 1) & this.mask;
    }
  }

  /** Same size and mtime as when it was read. */
  sameData(e: number, st: BigIntStats): boolean {
    return this.words[e * WORDS + 2] === st.size && this.words[e * WORDS + 3] === st.mtimeNs;
  }

  /** Same size, mtime and ctime: as it was read. */
  unchanged(e: number, st: BigIntStats): boolean {
    return this.sameData(e, st) && this.words[e * WORDS + 4] === st.ctimeNs;
  }

  /** Recorded too soon after a change to be trusted: its stat says nothing, only reading it again does. */
  racy(e: number): boolean {
    return (this.meta[e * META + 2] & RACY) !== 0;
  }

  samePath(e: number, path: number): boolean {
    return this.meta[e * META] === path;
  }

  /** The entry's blob ids (hex). */
  content(e: number): string[] {
    const out: string[] = [];
    for (let i = this.firstId[e]; i < this.firstId[e + 1]; i++) out.push(this.ids.toString('hex', i * ID_BYTES, (i + 1) * ID_BYTES));
    return out;
  }

  /** The entry's blob ids, in the cache's own bytes. */
  blobIds(e: number): Buffer {
    return this.ids.subarray(this.firstId[e] * ID_BYTES, this.firstId[e + 1] * ID_BYTES);
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
  private words = new BigInt64Array(1024 * WORDS);
  private meta = new Uint32Array(1024 * META);
  private ids: Buffer = Buffer.alloc(1024 * ID_BYTES);
  private count = 0;
  private idBytes = 0;

  /**
   * Records that the file with this stat, taken at `statAt` (ms, at or before the stat), at `path` (its
   * pathHash), holds these blobs: hex ids, or their bytes one after the other.
   */
  add(st: BigIntStats, statAt: number, path: number, content: readonly string[] | Uint8Array): void {
    const bytes = content instanceof Uint8Array ? content.length : content.length * ID_BYTES;
    if (!(content instanceof Uint8Array)) for (const id of content) if (!isHexId(id)) return;
    if (this.count * WORDS === this.words.length) {
      const w = new BigInt64Array(this.words.length * 2);
      w.set(this.words);
      this.words = w;
      const m = new Uint32Array(this.meta.length * 2);
      m.set(this.meta);
      this.meta = m;
    }
    if (this.idBytes + bytes > this.ids.length) {
      const b = Buffer.alloc(Math.max(this.idBytes + bytes, this.ids.length * 2));
      this.ids.copy(b, 0, 0, this.idBytes);
      this.ids = b;
    }
    const w = this.words;
    const at = this.count * WORDS;
    w[at] = st.dev;
    w[at + 1] = st.ino;
    w[at + 2] = st.size;
    w[at + 3] = st.mtimeNs;
    w[at + 4] = st.ctimeNs;
    this.meta[this.count * META] = path;
    this.meta[this.count * META + 1] = bytes / ID_BYTES;
    this.meta[this.count * META + 2] = st.ctimeNs >= BigInt(statAt - RACY_MS) * 1_000_000n ? RACY : 0;
    this.count++;
    if (content instanceof Uint8Array) this.ids.set(content, this.idBytes);
    else for (let i = 0; i < content.length; i++) this.ids.write(content[i], this.idBytes + i * ID_BYTES, 'hex');
    this.idBytes += bytes;
  }

  get size(): number {
    return this.count;
  }

  /** Writes the cache for the snapshot just saved: owner-only, through a temp file and a rename. */
  async save(path: string, snapshotId: string): Promise<void> {
    const head = Buffer.alloc(ID_BYTES + 4);
    fromHex(snapshotId).copy(head);
    head.writeUInt32LE(this.count, ID_BYTES);
    const view = (a: BigInt64Array | Uint32Array, n: number) => new Uint8Array(a.buffer, 0, n * a.BYTES_PER_ELEMENT);
    const parts = [head, view(this.words, this.count * WORDS), view(this.meta, this.count * META), this.ids.subarray(0, this.idBytes)];
    const digest = createHash('sha256');
    for (const p of parts) digest.update(p);
    await writeCacheFile(path, [MAGIC, digest.digest(), ...parts]);
  }
}

/**
 * Writes a local cache file whole or not at all (a temp file renamed over it), owner-only: what a cache says
 * of the user's files is theirs alone. Folders it makes are owner-only; one that exists is left as it is.
 */
export async function writeCacheFile(path: string, parts: readonly Uint8Array[]): Promise<void> {
  await writeCacheFileWith(path, async (fh) => void (await fh.writev([...parts])));
}

/** As writeCacheFile, the content written by `fill` (a large cache, written a slice at a time). */
export async function writeCacheFileWith(path: string, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fill(fh);
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
