import { randomBytes, webcrypto } from 'node:crypto';
import binding from 'zstd-napi/binding.js';
import { BlobIndex, type BlobLocation } from './blob-index.js';
import { gearTable } from './chunker.js';
import { CodecPool } from './codec-pool.js';
import { MASTER_KEY_BYTES, RepositoryCipher, blobIdOf, open as openSealed, splitMasterKey } from './crypto.js';
import { EngineError, NotFoundError, RepositoryDamagedError, RepositoryNotFoundError } from './errors.js';
import {
  DEFAULT_CONFIG, DICTIONARY_FORMAT, ENCRYPTED_FORMAT, FORMAT_VERSION, decodeJson, decodeMetadata, encodeJson, encodeMetadata, isSealed, type ChunkerParams, type RepositoryConfig,
} from './format.js';
import { Dictionaries } from './dictionaries.js';
import { ID_BYTES, fromHex, isHexId, sha256, toHex } from './hash.js';
import { IndexCache, IndexCacheDamagedError, indexCachePath } from './index-cache.js';
import { decodeIndex, encodeIndex, INDEX_BLOB_BYTES, readIndexView, type IndexFile, type IndexView } from './index-file.js';
import { addKey, listKeys, removeKey, unlock, type KeyInfo, type ScryptParams } from './keys.js';
import { RepositoryLock, type LockNotice } from './lock.js';
import { packHeaderBytes, parsePackHeader, PackBuilder, type PackEntry } from './pack.js';
import { readPruneMarks } from './prune-marks.js';
import { bySnapshotTime, type Snapshot, type SnapshotInfo } from './snapshot.js';
import type { PartWriter, Storage } from './storage.js';
import { decodeTree, decodeTreeEntry, type Tree, type TreeNode } from './tree.js';
import { TreeWindows } from './tree-windows.js';
import { blobLimits, blobProblem, decompressBounded, type BlobLimits } from './validate.js';
import { workerSettings } from './worker-settings.js';

export const PROGRAM = 'bm-dataprotect 0.1.0';

export interface InitOptions {
  chunkers?: Partial<RepositoryConfig['chunkers']>;
  compressionLevel?: number;
  packSize?: number;
  /** Encrypts the repository (format version 2) with a first key opened by this password. */
  password?: string;
  /** Cost of deriving a key from a password (tests make it cheap). */
  scrypt?: ScryptParams;
}

/** Where the password of an encrypted repository comes from: asked only when the repository is encrypted. */
export type PasswordSource = string | (() => string | undefined | Promise<string | undefined>);

export interface OpenOptions {
  loadIndex?: boolean;
  password?: PasswordSource;
  /**
   * Starts the codec workers at once, for a command that will need them (a restore): a worker takes tens of
   * milliseconds to start, which then overlaps the reading of the index instead of following it.
   */
  codec?: CodecUse;
  /**
   * The cache directory (defaultCacheDir()) of a command that looks up a few blobs (a restore of one mailbox):
   * the index is looked up in a local cache of it (index-cache.ts), made there on first use, instead of read
   * whole. A plain repository only: an encrypted one's index stays in the repository, sealed.
   */
  indexCache?: string;
  /** What to tell about an index cache that is not used (damaged, not this user's). */
  notice?: (message: string) => void;
}

/**
 * What the codec workers are for: a backup's run at low priority (DP_BACKUP_NICE) beside the services it
 * backs up; a restore's, which someone is waiting for, at normal priority, one fewer (its own thread writes too).
 */
export type CodecUse = 'backup' | 'restore';

export interface SnapshotFilter {
  server?: string;
  tag?: string;
}

/** An open repository: its config, the in-memory index of every blob, and reading of blobs, trees and snapshots. */
export class Repository {
  index = new BlobIndex();
  /** Index files loaded (their ids): a prune supersedes exactly these. */
  readonly indexFiles = new Set<string>();
  /**
   * Packs a prune marked for deletion (pack id -> when): their blobs are read as usual but never reused by
   * a backup, which stores them again instead (see prune.ts).
   */
  pruneMarks: ReadonlyMap<string, number> = new Map();
  readonly gear: Int32Array;
  /** What a blob of this repository may declare (see validate.ts). */
  readonly limits: BlobLimits;
  private readonly treeCache = new Map<string, Tree>();
  /** Single entries of trees read by treeEntry (tree id/name -> entry, undefined when there is none). */
  private readonly entryCache = new Map<string, TreeNode | undefined>();
  /** Tree packs read a window at a time (see tree-windows.ts). */
  private readonly treeWindows = new TreeWindows((pack, offset, length) => this.storage.read('data', pack, offset, length));
  private pool: CodecPool | undefined;
  /** Dictionaries read so far (FORMAT.md, "Dictionaries"), by blob id; the codec workers get each one too. */
  readonly dictionaries = new Dictionaries();
  /** The local index cache looked up beside `index` (which then holds only what it does not cover), if any. */
  private cached: IndexCache | null = null;
  private cacheNotice: (message: string) => void = () => {};

  private constructor(
    /** Where the files are: the engine's own business; other folders use the methods below. */
    readonly storage: Storage,
    readonly config: RepositoryConfig,
    /** The master key of an encrypted repository (null: plain, format 1). */
    private readonly master: Buffer | null = null,
    /** The key file that opened it. */
    readonly keyId: string | null = null,
  ) {
    this.gear = gearTable(config.gearSeed);
    this.cipher = master ? new RepositoryCipher(splitMasterKey(master)) : null;
    this.limits = blobLimits(config, this.cipher !== null);
  }

  /** Encryption of every blob and file (null for a plain repository). */
  readonly cipher: RepositoryCipher | null;

  get encrypted(): boolean {
    return this.cipher !== null;
  }

  /** A blob's id: SHA-256 of its content, keyed (HMAC) in an encrypted repository. */
  blobId(data: Uint8Array): Buffer {
    return blobIdOf(this.cipher?.key.id ?? null, data);
  }

  /** An empty pack of this repository's format. */
  packBuilder(): PackBuilder {
    return new PackBuilder(this.cipher);
  }

  /** The storage's human-readable location, for messages. */
  get location(): string {
    return this.storage.location;
  }

  static async init(storage: Storage, opts: InitOptions = {}): Promise<Repository> {
    if (await storage.stat('config', 'config')) {
      // A repository made before its files were owner-only is tightened by asking for it again.
      const tightened = (await storage.restrictAccess?.()) ?? 0;
      throw new EngineError(`a repository already exists at ${storage.location}${tightened ? ` (${tightened} of its files and folders are now readable by their owner only)` : ''}`);
    }
    const encrypted = opts.password !== undefined;
    const config: RepositoryConfig = {
      ...DEFAULT_CONFIG,
      // An encrypted repository cuts content where no one without its key can predict: its own gear seed.
      ...(encrypted ? { version: ENCRYPTED_FORMAT, gearSeed: randomBytes(4).readInt32LE() } : {}),
      id: randomBytes(16).toString('hex'),
      created: new Date().toISOString(),
      chunkers: {
        file: validChunker(opts.chunkers?.file ?? DEFAULT_CONFIG.chunkers.file, 'file'),
        stream: validChunker(opts.chunkers?.stream ?? DEFAULT_CONFIG.chunkers.stream, 'stream'),
        // Rows and dictionaries (version 3) in a plain repository; an encrypted one stays version 2.
        ...(encrypted ? {} : { rows: validChunker(opts.chunkers?.rows ?? DEFAULT_CONFIG.chunkers.rows!, 'rows') }),
      },
      compression: { algorithm: 'zstd', level: opts.compressionLevel ?? DEFAULT_CONFIG.compression.level },
      packSize: opts.packSize ?? DEFAULT_CONFIG.packSize,
    };
    let master: Buffer | null = null;
    let keyId: string | null = null;
    if (encrypted) {
      master = randomBytes(MASTER_KEY_BYTES);
      // The key before the config: a repository exists once its config does, and must then open.
      keyId = await addKey(storage, opts.password!, master, opts.scrypt);
    }
    const repo = new Repository(storage, config, master, keyId);
    await storage.write('config', 'config', encodeJson(config, repo.cipher, 'config'));
    // An existing folder (made by an administrator with their umask) becomes owner-only too.
    await storage.restrictAccess?.();
    return repo;
  }

  static async open(storage: Storage, opts: OpenOptions = {}): Promise<Repository> {
    let file: Buffer;
    try {
      file = await storage.read('config', 'config');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        throw new RepositoryNotFoundError(`no repository at ${storage.location} (no config file); create one with 'bm-dataprotect repo init --repo ${storage.location}'`);
      }
      throw err;
    }
    let master: Buffer | null = null;
    let keyId: string | null = null;
    if (isSealed(file)) {
      const source = opts.password;
      ({ master, keyId } = await unlock(storage, typeof source === 'function' ? await source() : source));
    }
    const cipher = master ? new RepositoryCipher(splitMasterKey(master)) : null;
    const config = decodeJson<RepositoryConfig>(file, 'config', cipher, 'config');
    if (typeof config.version !== 'number' || config.version > FORMAT_VERSION) {
      throw new RepositoryDamagedError(`config: repository format version ${config.version} is newer than this program supports (${FORMAT_VERSION}); upgrade bm-dataprotect`);
    }
    if ((config.version === ENCRYPTED_FORMAT) !== (cipher !== null)) throw new RepositoryDamagedError(`config: format version ${config.version} does not match its ${cipher ? '' : 'lack of '}encryption`);
    const repo = new Repository(storage, config, master, keyId);
    if (opts.codec) repo.codec(opts.codec);
    if (opts.loadIndex === false) return repo;
    if (opts.indexCache !== undefined && !repo.encrypted) {
      repo.cacheNotice = opts.notice ?? (() => {});
      await repo.loadIndexCached(opts.indexCache);
    } else await repo.loadIndex();
    return repo;
  }

  /**
   * The index through the local cache: the index files it covers are not read, those it does not (later
   * backups) are, on top of it. Made again, from all the index files, when it is missing, damaged, stale (an
   * index file it covers is gone: a prune), or when what it does not cover has grown past an eighth of it.
   */
  private async loadIndexCached(cacheDir: string): Promise<void> {
    await this.loadPruneMarks();
    const listed = new Map<string, number>();
    for await (const f of this.storage.list('index')) listed.set(f.name, f.size);
    const path = indexCachePath(cacheDir, this.config.id);
    // Between a prune's two phases a blob may have two locations, one to avoid: the index files decide.
    const cache = this.pruneMarks.size === 0 ? IndexCache.open(path, this.cacheNotice) : null;
    if (cache && [...cache.covers].every((n) => listed.has(n))) {
      let newer = 0;
      for (const [name, size] of listed) if (!cache.covers.has(name)) newer += size;
      if (newer <= (cache.blobs * INDEX_BLOB_BYTES) / 8 + 64 * 1024) {
        this.cached = cache;
        for (const n of cache.covers) this.indexFiles.add(n);
        await this.loadIndex();
        return;
      }
    }
    cache?.close();
    await this.loadIndex();
    await this.writeIndexCache(path);
  }

  /** Writes the local index cache of the index loaded whole; a cache that cannot be written is only a notice. */
  private async writeIndexCache(path: string): Promise<void> {
    if (this.pruneMarks.size > 0) return;
    try {
      await IndexCache.write(path, this.index, this.indexFiles);
    } catch (err) {
      this.cacheNotice(`index cache ${path} not written: ${(err as Error).message}`);
    }
  }

  /**
   * Looks these blobs up now, so that blobLocation then answers without reading: through the local index
   * cache, one bucket each; a cache found damaged on the way is dropped for the index files, read whole (and
   * the cache made again). Nothing to do when the index is loaded whole.
   */
  async lookUp(ids: Iterable<string>): Promise<void> {
    const cache = this.cached;
    if (!cache) return;
    try {
      if (Array.isArray(ids)) cache.expect(ids.length);
      for (const id of ids) {
        if (!isHexId(id)) continue;
        const key = fromHex(id);
        if (this.index.has(key)) continue;
        const loc = cache.get(key);
        if (loc) this.index.add(key, loc);
      }
    } catch (err) {
      if (!(err instanceof IndexCacheDamagedError)) throw err;
      await this.dropIndexCache(cache, err);
    }
  }

  /**
   * The raw lengths of these blobs, in order (where each starts in a file made of them), without making their
   * locations: a file of thousands of blobs read by ranges (a database dump) needs every one, at the cost of
   * a lookup each.
   */
  async rawLengths(ids: string[]): Promise<Float64Array> {
    const cache = this.cached;
    const lengths = new Float64Array(ids.length);
    const key = Buffer.alloc(ID_BYTES);
    try {
      cache?.expect(ids.length);
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        // Hex decoding stops at the first character that is not hex: a whole key is a well-formed id (any case).
        if (typeof id !== 'string' || id.length !== 2 * ID_BYTES || key.write(id, 'hex') !== ID_BYTES) {
          throw new RepositoryDamagedError(`a file names a blob that no index can hold (${String(id).slice(0, 12)})`);
        }
        let n = this.index.rawLength(key);
        if (n < 0 && cache) n = cache.rawLength(key);
        if (n < 0) throw new RepositoryDamagedError(`blob ${id.slice(0, 12)} is not in any index`);
        lengths[i] = n;
      }
    } catch (err) {
      if (!(cache && err instanceof IndexCacheDamagedError)) throw err;
      await this.dropIndexCache(cache, err);
      return this.rawLengths(ids);
    }
    return lengths;
  }

  /** A cache found damaged: dropped for the index files, read whole (and the cache made again). */
  private async dropIndexCache(cache: IndexCache, err: Error): Promise<void> {
    this.cacheNotice(`${err.message}; reading the index files instead`);
    this.cached = null;
    cache.close();
    await this.reloadIndex();
    await this.writeIndexCache(cache.path);
  }

  /** Reads every index file into the in-memory table (a few in parallel). */
  async loadIndex(each?: (name: string, idx: IndexFile) => void): Promise<void> {
    await this.loadPruneMarks();
    const names: string[] = [];
    let bytes = 0;
    for await (const f of this.storage.list('index')) {
      if (this.indexFiles.has(f.name)) continue;
      names.push(f.name);
      bytes += f.size;
    }
    // Sized once from the files' sizes (46 bytes a blob), instead of growing and rehashing on the way.
    if (this.index.size === 0) this.index = new BlobIndex(bytes / INDEX_BLOB_BYTES);
    await mapLimit(names, 4, async (name) => {
      // With prune marks (rare: between a prune's two phases) a duplicate may have to move: blob by blob.
      if (!each && this.pruneMarks.size === 0) return this.addIndexView(name, await this.readIndexView(name));
      const idx = await this.readIndexFile(name);
      this.addIndexFile(name, idx);
      each?.(name, idx);
    });
  }

  /**
   * Forgets the in-memory index and reads the index files again (after a prune rewrote them, or before a
   * prune, which must see what other processes indexed); `each` sees every file read.
   */
  async reloadIndex(each?: (name: string, idx: IndexFile) => void): Promise<void> {
    this.cached?.close();
    this.cached = null;
    this.index = new BlobIndex(this.index.size);
    this.indexFiles.clear();
    await this.loadIndex(each);
  }

  /** Reads the prune marks again: a backup does at its start, so that it reuses nothing marked before it. */
  async loadPruneMarks(): Promise<void> {
    this.pruneMarks = await readPruneMarks(this.storage, this.cipher);
  }

  /** Whether a backup may reference this blob as stored: it is indexed, and not only in a pack marked for deletion. */
  reusable(id: Uint8Array): boolean {
    if (this.pruneMarks.size === 0) return this.index.has(id);
    const pack = this.index.packOf(id);
    return pack !== undefined && !this.pruneMarks.has(pack);
  }

  async readIndexFile(name: string): Promise<IndexFile> {
    return decodeIndex(name, await this.readIndexBytes(name), this.cipher);
  }

  /** An index file's bytes, checked against its name (walkIndex, readIndexView or decodeIndex reads them). */
  async readIndexBytes(name: string): Promise<Buffer> {
    return this.readVerified('index', name);
  }

  addIndexFile(name: string, idx: IndexFile): void {
    for (const p of idx.packs) for (const b of p.blobs) this.indexBlob(b.id, { ...b, pack: p.id });
    this.indexFiles.add(name);
  }

  private async readIndexView(name: string): Promise<IndexView> {
    return readIndexView(name, await this.readIndexBytes(name), this.cipher);
  }

  /** Adds an index file's blobs straight from its bytes (no object per blob: a large index loads in milliseconds). */
  private addIndexView(name: string, view: IndexView): void {
    for (const p of view.packs) this.index.addRecords(view.bytes, p.at, p.count, p.id, p.dictionary);
    this.indexFiles.add(name);
  }

  /** A metadata file named by the SHA-256 of its bytes, checked against its name. */
  private async readVerified(type: 'index', name: string): Promise<Buffer> {
    const file = await this.storage.read(type, name);
    if (toHex(sha256(file)) !== name) throw new RepositoryDamagedError(`${type} ${name.slice(0, 12)}: content does not match its name`);
    return file;
  }

  /** Adds a blob's location; a blob both in a marked pack and in another (a repack's copy) is located in the other. */
  indexBlob(id: Uint8Array, loc: BlobLocation): void {
    if (this.index.add(id, loc) || this.pruneMarks.size === 0 || this.pruneMarks.has(loc.pack)) return;
    if (this.pruneMarks.has(this.index.packOf(id)!)) this.index.replace(id, loc);
  }

  /** Writes an index file for these packs and returns its id. */
  async writeIndex(packs: IndexFile['packs'], supersedes: string[] = []): Promise<string> {
    const file = encodeIndex({ supersedes, packs }, this.cipher);
    // Hashed on libuv's pool: an index file reaches several MiB, and a backup shares the server's event loop.
    const name = toHex(Buffer.from(await webcrypto.subtle.digest('SHA-256', file)));
    await this.storage.write('index', name, file);
    this.indexFiles.add(name);
    return name;
  }

  /** Removes an index file that a newer one supersedes (prune). */
  async deleteIndexFile(name: string): Promise<void> {
    await this.storage.delete('index', name);
    this.indexFiles.delete(name);
  }

  /** The codec workers, started on first use (`use` sets their priority and number then). */
  codec(use: CodecUse = 'backup'): CodecPool {
    const settings = workerSettings();
    // A restore's own thread writes too (restorer.ts): one worker fewer.
    if (!this.pool) {
      this.pool = new CodecPool(this.config.compression.level, this.gear, this.cipher?.key ?? null, use === 'restore' ? { workers: Math.max(1, settings.workers - 1), nice: 0 } : settings);
      for (const id of this.dictionaries.ids()) this.pool.addDictionary(id, this.dictionaries.bytes(id));
    }
    return this.pool;
  }

  /** `rows` is `stream` in a repository whose config has no `rows` chunker (before version 3). */
  chunker(kind: 'file' | 'stream' | 'rows'): ChunkerParams {
    return this.config.chunkers[kind] ?? this.config.chunkers.stream;
  }

  /**
   * Where a blob is stored (pack, offset, length); damaged when no index knows it, or when its declared
   * sizes cannot be right (so that nothing is allocated for them).
   */
  blobLocation(id: Uint8Array | string): BlobLocation {
    const key = typeof id === 'string' ? fromHex(id) : id;
    const hex = () => (typeof id === 'string' ? id : toHex(id)).slice(0, 12);
    // Through the cache only for a caller that did not look its blobs up first (lookUp): its damage then throws.
    const loc = this.index.get(key) ?? this.cached?.get(key);
    if (!loc) throw new RepositoryDamagedError(`blob ${hex()} is not in any index`);
    const problem = blobProblem(loc, this.limits);
    if (problem) throw new RepositoryDamagedError(`blob ${hex()} in pack ${loc.pack.slice(0, 12)}: ${problem}`);
    return loc;
  }

  /** Whether new blobs may be compressed with a dictionary here: format version 3 only. */
  get usesDictionaries(): boolean {
    return this.config.version === DICTIONARY_FORMAT;
  }

  /**
   * Reads the dictionaries these blobs need, once each, and hands them to the codec workers when they run.
   * A dictionary is an ordinary blob stored without one (a reader refuses otherwise: no chain to follow).
   */
  async loadDictionaries(locs: Iterable<{ dictionary?: string }>): Promise<void> {
    for (const l of locs) {
      const id = l.dictionary;
      if (id === undefined || this.dictionaries.has(id)) continue;
      if (!isHexId(id)) throw new RepositoryDamagedError(`a blob names a dictionary that no index can hold (${String(id).slice(0, 12)})`);
      await this.lookUp([id]);
      const loc = this.blobLocation(id);
      if (loc.dictionary !== undefined) throw new RepositoryDamagedError(`dictionary ${id.slice(0, 12)} is itself compressed with a dictionary`);
      this.useDictionary(id, await this.readBlob(id));
    }
  }

  /** A dictionary just stored (or about to be, in the same backup): this thread and the codec workers keep it. */
  useDictionary(id: string, bytes: Uint8Array): void {
    if (this.dictionaries.has(id)) return;
    this.dictionaries.add(id, bytes);
    this.pool?.addDictionary(id, bytes);
  }

  /** One blob, decompressed and checked against its id. */
  async readBlob(id: string): Promise<Buffer> {
    await this.lookUp([id]);
    const loc = this.blobLocation(id);
    await this.loadDictionaries([loc]);
    let stored: Buffer;
    try {
      stored = await this.storage.read('data', loc.pack, loc.offset, loc.length);
    } catch (err) {
      throw new RepositoryDamagedError(`reading blob ${id.slice(0, 12)} from pack ${loc.pack.slice(0, 12)}: ${(err as Error).message}`);
    }
    return this.verifyBlob(id, loc, stored);
  }

  /**
   * Blobs that lie one after the other in one pack (a stream's chunks as a backup stored them), read with one
   * storage read and each checked against its id: a file of hundreds of small chunks costs a few reads, not
   * one per chunk. Blobs that do not follow each other are read one by one.
   */
  async readBlobRun(ids: string[]): Promise<Buffer[]> {
    await this.lookUp(ids);
    const locs = ids.map((id) => this.blobLocation(id));
    await this.loadDictionaries(locs);
    const first = locs[0];
    const adjacent = locs.every((l, i) => i === 0 || (l.pack === first.pack && l.offset === locs[i - 1].offset + locs[i - 1].length));
    if (locs.length < 2 || !adjacent) return Promise.all(ids.map((id) => this.readBlob(id)));
    const last = locs[locs.length - 1];
    let stored: Buffer;
    try {
      stored = await this.storage.read('data', first.pack, first.offset, last.offset + last.length - first.offset);
    } catch (err) {
      throw new RepositoryDamagedError(`reading blobs ${ids[0].slice(0, 12)}… from pack ${first.pack.slice(0, 12)}: ${(err as Error).message}`);
    }
    return ids.map((id, i) => this.verifyBlob(id, locs[i], stored.subarray(locs[i].offset - first.offset, locs[i].offset - first.offset + locs[i].length)));
  }

  /** `cache`: false for a walk that reads each tree once (check), so that it does not fill the cache for nothing. */
  async loadTree(id: string, cache = true): Promise<Tree> {
    const cached = this.treeCache.get(id);
    if (cached) return cached;
    await this.lookUp([id]);
    const loc = this.blobLocation(id);
    await this.loadDictionaries([loc]);
    const stored = await this.treeWindows.blob(loc.pack, loc.offset, loc.length);
    const tree = decodeTree(stored ? this.verifyBlob(id, loc, stored) : await this.readBlob(id), id);
    if (!cache) return tree;
    if (this.treeCache.size >= 4096) this.treeCache.delete(this.treeCache.keys().next().value!);
    this.treeCache.set(id, tree);
    return tree;
  }

  /**
   * The entry `name` of a tree, or undefined: one step of a walk down to a path, which checks that entry only
   * (decodeTreeEntry) and caches nothing, unless the whole tree is in the cache already.
   */
  async treeEntry(id: string, name: string): Promise<TreeNode | undefined> {
    const cached = this.treeCache.get(id);
    if (cached) return cached.nodes.find((n) => n.name === name);
    // Entries taken are kept (the same object each time): a file read range by range (a dump, per container)
    // is looked up again for each range, and what is derived from its node is cached by the node's identity.
    const key = `${id}/${name}`;
    if (this.entryCache.has(key)) return this.entryCache.get(key);
    await this.lookUp([id]);
    const loc = this.blobLocation(id);
    await this.loadDictionaries([loc]);
    const stored = await this.treeWindows.blob(loc.pack, loc.offset, loc.length);
    const node = decodeTreeEntry(stored ? this.verifyBlob(id, loc, stored) : await this.readBlob(id), id, name);
    if (this.entryCache.size >= 4096) this.entryCache.delete(this.entryCache.keys().next().value!);
    this.entryCache.set(key, node);
    return node;
  }

  async saveSnapshot(s: Snapshot): Promise<string> {
    const file = encodeJson(s, this.cipher, 'snapshot');
    const id = toHex(sha256(file));
    await this.storage.write('snapshot', id, file);
    return id;
  }

  /** Removes a snapshot file (forget, retention); its data stays until a prune. Missing is not an error. */
  async deleteSnapshot(id: string): Promise<void> {
    await this.storage.delete('snapshot', id);
  }

  /** Rewrites a named reference (e.g. `latest`) whole and durably. */
  async writeReference(name: string, data: Buffer): Promise<void> {
    await this.storage.write('reference', name, this.cipher ? encodeMetadata(data, false, this.cipher, `reference ${name}`) : data);
  }

  /** A named reference's content, or null when there is none. */
  async readReference(name: string): Promise<Buffer | null> {
    let file: Buffer;
    try {
      file = await this.storage.read('reference', name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return this.cipher ? decodeMetadata(file, `reference ${name}`, this.cipher, `reference ${name}`) : file;
  }

  /** Adds a password to an encrypted repository; returns the new key's id. */
  async addKey(password: string, scrypt?: ScryptParams): Promise<string> {
    if (!this.master) throw new EngineError(`repository ${this.location} is not encrypted: it has no keys`);
    return addKey(this.storage, password, this.master, scrypt);
  }

  /** The keys (passwords) of an encrypted repository, oldest first. */
  async listKeys(): Promise<KeyInfo[]> {
    if (!this.master) throw new EngineError(`repository ${this.location} is not encrypted: it has no keys`);
    return listKeys(this.storage);
  }

  /** Withdraws a password (by key id or unique prefix); never the last one. Returns the removed key's id. */
  async removeKey(ref: string): Promise<string> {
    if (!this.master) throw new EngineError(`repository ${this.location} is not encrypted: it has no keys`);
    return removeKey(this.storage, ref);
  }

  /** Stores a pack under its id (the SHA-256 of its bytes). */
  async writePack(id: string, data: Buffer | readonly Uint8Array[]): Promise<void> {
    await this.storage.write('data', id, data);
  }

  /** A pack written in parts as a codec worker fills it, committed under its id (the hash of all its bytes). */
  packParts(): PartWriter {
    return this.storage.writeParts('data');
  }

  /** Removes a pack whose blobs no index lists any more (prune). */
  async deletePack(id: string): Promise<void> {
    await this.storage.delete('data', id);
  }

  /** The stored size of a pack, or null when it is missing (a check of what a restore will need). */
  async packSize(id: string): Promise<number | null> {
    return (await this.storage.stat('data', id))?.size ?? null;
  }

  /** Bytes the repository's files take in its storage (packs, indexes, snapshots, config). */
  async storedBytes(): Promise<number> {
    let total = 0;
    for (const type of ['config', 'data', 'index', 'snapshot'] as const) for await (const f of this.storage.list(type)) total += f.size;
    return total;
  }

  async loadSnapshot(id: string): Promise<SnapshotInfo> {
    let file: Buffer;
    try {
      file = await this.storage.read('snapshot', id);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`snapshot ${id.slice(0, 12)} does not exist`);
      throw err;
    }
    if (toHex(sha256(file)) !== id) throw new RepositoryDamagedError(`snapshot ${id.slice(0, 12)}: content does not match its name`);
    return { ...decodeJson<Snapshot>(file, `snapshot ${id.slice(0, 12)}`, this.cipher, 'snapshot'), id };
  }

  /** Snapshots, oldest first. */
  async listSnapshots(filter: SnapshotFilter = {}): Promise<SnapshotInfo[]> {
    const names: string[] = [];
    for await (const f of this.storage.list('snapshot')) names.push(f.name);
    const all = await mapLimit(names, 8, (n) => this.loadSnapshot(n));
    return all
      .filter((s) => (filter.server === undefined || s.server === filter.server) && (filter.tag === undefined || s.tag === filter.tag))
      .sort(bySnapshotTime);
  }

  /** A snapshot by id, unique id prefix, or `latest` (of the filter). */
  async findSnapshot(ref: string, filter: SnapshotFilter = {}): Promise<SnapshotInfo> {
    if (ref === 'latest') {
      const all = await this.listSnapshots(filter);
      const last = all.at(-1);
      if (!last) throw new NotFoundError(`no snapshot${describeFilter(filter)} in ${this.location}`);
      return last;
    }
    if (!/^[0-9a-f]{4,64}$/.test(ref)) throw new NotFoundError(`${JSON.stringify(ref)} is not a snapshot id (give at least 4 hex digits, or 'latest')`);
    const matches: string[] = [];
    for await (const f of this.storage.list('snapshot')) if (f.name.startsWith(ref)) matches.push(f.name);
    if (matches.length === 0) throw new NotFoundError(`no snapshot ${ref} in ${this.location}`);
    if (matches.length > 1) throw new NotFoundError(`snapshot id ${ref} is ambiguous (${matches.length} snapshots start with it); give more digits`);
    return this.loadSnapshot(matches[0]);
  }

  lock(exclusive: boolean, purpose: string, notice?: LockNotice): Promise<RepositoryLock> {
    return RepositoryLock.acquire(this.storage, exclusive, purpose, notice, undefined, this.cipher);
  }

  /** Reads the header at the end of a pack. */
  async readPackHeader(name: string, size: number): Promise<PackEntry[]> {
    const guess = Math.min(size, 64 * 1024);
    let tail = await this.storage.read('data', name, size - guess, guess);
    const need = packHeaderBytes(tail.readUInt32LE(tail.length - 4), this.encrypted);
    if (need > tail.length && need <= size) tail = await this.storage.read('data', name, size - need, need);
    return parsePackHeader(name, size, tail, this.cipher);
  }

  /**
   * Packs written by a backup that died before writing their index (kill -9): their blobs are
   * indexed now, so the next backup reuses them instead of reading and storing them again.
   */
  async indexOrphanPacks(notice: LockNotice = () => {}): Promise<number> {
    const orphans: { id: string; blobs: PackEntry[] }[] = [];
    for await (const f of this.storage.list('data')) {
      // A marked pack stays out: its blobs are not to be reused, and the prune that marked it deletes it.
      if (this.index.hasPack(f.name) || this.pruneMarks.has(f.name)) continue;
      try {
        const blobs = await this.readPackHeader(f.name, f.size);
        // Blobs compressed with a dictionary: only an index names it, so such a pack is not indexed from its
        // header alone (its blobs are stored again; prune removes it).
        if (blobs.some((b) => b.dictionary !== undefined)) {
          notice(`ignoring pack ${f.name.slice(0, 12)} that no index references: its blobs use a dictionary that only an index names`);
          continue;
        }
        orphans.push({ id: f.name, blobs });
      } catch (err) {
        notice(`ignoring unreadable pack ${f.name.slice(0, 12)} that no index references: ${(err as Error).message}`);
      }
    }
    if (orphans.length === 0) return 0;
    const name = await this.writeIndex(orphans);
    this.addIndexFile(name, { supersedes: [], packs: orphans });
    notice(`indexed ${orphans.length} pack(s) left by an interrupted backup`);
    return orphans.length;
  }

  async close(): Promise<void> {
    this.cached?.close();
    this.cached = null;
    await this.pool?.close();
    this.pool = undefined;
  }

  /** Decrypts, decompresses stored bytes (no more than the declared size) and checks them against the blob id. */
  private verifyBlob(id: string, loc: BlobLocation, stored: Buffer): Buffer {
    if (this.cipher) stored = openSealed(this.cipher.key.encrypt, stored, `blob ${id.slice(0, 12)} in pack ${loc.pack.slice(0, 12)} at ${loc.offset}`);
    return verifyPlainBlob(id, loc, stored, this.cipher?.key.id ?? null, loc.dictionary !== undefined ? this.dictionaries.ddict(loc.dictionary) : undefined);
  }
}

let dctx: InstanceType<typeof binding.DCtx> | undefined;

function verifyPlainBlob(id: string, loc: BlobLocation, stored: Buffer, idKey: Buffer | null, dictionary?: InstanceType<typeof binding.DDict>): Buffer {
  let raw: Buffer;
  try {
    raw = loc.zstd ? decompressBounded((dctx ??= new binding.DCtx()), stored, loc.rawLength, undefined, dictionary) : stored;
  } catch (err) {
    throw new RepositoryDamagedError(`blob ${id.slice(0, 12)} in pack ${loc.pack.slice(0, 12)} at ${loc.offset}: cannot decompress (${(err as Error).message})`);
  }
  if (toHex(blobIdOf(idKey, raw)) !== id) throw new RepositoryDamagedError(`blob ${id.slice(0, 12)} in pack ${loc.pack.slice(0, 12)} at ${loc.offset}: content does not match its id`);
  return raw;
}

function validChunker(p: ChunkerParams, kind: string): ChunkerParams {
  if (!(p.min > 0 && p.min < p.avg && p.avg < p.max && p.max <= 64 * 1024 * 1024)) {
    throw new EngineError(`chunker '${kind}': need 0 < min < avg < max <= 64 MiB, got ${JSON.stringify(p)}`);
  }
  return p;
}

function describeFilter(f: SnapshotFilter): string {
  const parts = [f.server && `server ${f.server}`, f.tag && `tag ${f.tag}`].filter(Boolean);
  return parts.length ? ` for ${parts.join(', ')}` : '';
}

/** Runs `fn` over `items` with at most `limit` at a time, keeping the order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
