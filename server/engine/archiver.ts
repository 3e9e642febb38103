import { hostname as osHostname } from 'node:os';
import type { BigIntStats } from 'node:fs';
import { lstatSync, readdirSync } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BlobType } from './blob-index.js';
import { StreamChunker } from './chunker.js';
import { EngineError, RepositoryFullError } from './errors.js';
import { FilesCache, FilesCacheWriter, filesCachePath, pathHash } from './files-cache.js';
import { asRawDictionary } from './dictionaries.js';
import { ID_BYTES, fromHex, isHexId, toHex } from './hash.js';
import type { RepositoryLock } from './lock.js';
import { RenameTable } from './rename-table.js';
import { latestSnapshot, rememberSnapshot } from './snapshot-index.js';
import { PROGRAM, type Repository } from './repository.js';
import { BlobSaver } from './saver.js';
import type { BackupSummary, SnapshotInfo } from './snapshot.js';
import { compareNames, encodeTree, sameNode, splitPath, type NodeType, type Tree, type TreeNode } from './tree.js';
import { MAX_DICTIONARY_TREE } from './validate.js';

export type FileStatus = 'new' | 'changed' | 'unmodified' | 'renamed';

/** Progress is reported through this interface; the engine never writes to a terminal. */
export interface BackupProgress {
  /** Called often (after each file); the receiver throttles what it shows. */
  update?(summary: Readonly<BackupSummary>, current: string): void;
  file?(path: string, status: FileStatus): void;
  error?(path: string, error: Error): void;
  notice?(message: string): void;
}

export interface BackupOptions {
  server: string;
  tag: string;
  hostname?: string;
  /** Parent snapshot for change detection: an id, `auto` (latest of the same server and tag, the default) or `none`. */
  parent?: string;
  /** Recognise renamed and moved files by (device, inode, size, mtime). On by default. */
  renameDetection?: boolean;
  progress?: BackupProgress;
  time?: Date;
  /** Cancels the backup between files (and between pieces of a stream): the next step throws. */
  signal?: AbortSignal;
  /**
   * Directory of the local caches (`defaultCacheDir()`): the files cache of this (server, tag) is read from and
   * written there (files-cache.ts), and the server, tag and time of each snapshot (snapshot-index.ts). None:
   * change detection reads the parent snapshot's trees, and the parent is found by reading every snapshot.
   */
  cacheDir?: string;
}

interface VDir {
  children: Map<string, VDir | TreeNode>;
  meta?: TreeNode;
}

const isVDir = (x: VDir | TreeNode): x is VDir => (x as VDir).children instanceof Map;

/**
 * Makes one snapshot. Sources are added at virtual paths (a directory tree, a byte stream, a few
 * bytes), then `commit()` writes the trees, the packs, the index and finally the snapshot.
 */
export class Archiver {
  readonly summary: BackupSummary = {
    filesNew: 0, filesChanged: 0, filesUnmodified: 0, filesRenamed: 0, dirs: 0,
    bytesRead: 0, bytesTotal: 0, blobsNew: 0, bytesAdded: 0, errors: 0, durationMs: 0,
  };
  private readonly saver: BlobSaver;
  private readonly root: VDir = { children: new Map() };
  private readonly paths: string[] = [];
  private readonly started = Date.now();
  private readonly time: Date;
  private lock: RepositoryLock | undefined;
  private parent: SnapshotInfo | null | undefined;
  private readonly renameTables = new Map<string, Promise<RenameTable | null>>();
  private readonly hardlinks = new Map<string, string[]>();
  private readonly largeFiles = new Semaphore(2);
  private readonly filesInFlight = new Semaphore(FILES_IN_FLIGHT);
  private readonly turn = new EventLoopTurn(YIELD_EVERY);
  private readonly lister = new DirectoryLister();
  private current = '';
  /** What the backup that made the parent snapshot found in each file (null: none usable). */
  private cache: FilesCache | null = null;
  private cacheOut: FilesCacheWriter | null = null;
  private cachePath = '';

  constructor(
    private readonly repo: Repository,
    private readonly opts: BackupOptions,
  ) {
    this.saver = new BlobSaver(repo);
    this.time = opts.time ?? new Date();
  }

  /** Takes the shared lock, picks the parent and indexes packs left by an interrupted backup. */
  async start(): Promise<void> {
    if (this.lock) return;
    this.lock = await this.repo.lock(false, `backup of ${this.opts.server} ${this.opts.tag}`, (m) => this.opts.progress?.notice?.(m));
    try {
      await this.repo.loadPruneMarks();
      await this.repo.indexOrphanPacks((m) => this.opts.progress?.notice?.(m));
      const p = this.opts.parent ?? 'auto';
      if (p === 'none') this.parent = null;
      else if (p === 'auto') {
        const filter = { server: this.opts.server, tag: this.opts.tag };
        if (this.opts.cacheDir) this.parent = await latestSnapshot(this.repo, filter, this.opts.cacheDir);
        else this.parent = (await this.repo.listSnapshots(filter)).at(-1) ?? null;
      } else this.parent = await this.repo.findSnapshot(p);
      if (this.parent) this.saver.backupWork = 'with-parent';
      if (this.opts.cacheDir) {
        this.cachePath = filesCachePath(this.opts.cacheDir, this.repo.config.id, this.opts.server, this.opts.tag);
        this.cacheOut = new FilesCacheWriter();
        if (this.parent) this.cache = await FilesCache.load(this.cachePath, this.parent.id, (m) => this.opts.progress?.notice?.(m));
      }
    } catch (err) {
      await this.lock.release();
      this.lock = undefined;
      throw err;
    }
  }

  get parentSnapshot(): SnapshotInfo | null {
    return this.parent ?? null;
  }

  /** Backs up the directory tree (or single file) `fsPath` at `virtualPath` of the snapshot. */
  async addTree(virtualPath: string, fsPath: string, opts: { statParents?: boolean } = {}): Promise<void> {
    await this.start();
    const parts = splitPath(virtualPath);
    if (parts.length === 0) throw new EngineError('cannot back up to the root of a snapshot: give a virtual path with a name');
    const dir = await this.vdir(parts.slice(0, -1), opts.statParents ? fsPath : undefined);
    const name = parts.at(-1)!;
    // With a files cache, each file is found there: the parent's trees are not read at all.
    const parentNode = this.cache ? undefined : await this.parentNodeAt(parts);
    const statAt = Date.now();
    const st = await lstat(fsPath, { bigint: true });
    this.paths.push('/' + parts.join('/'));
    const node = await this.archiveEntry(fsPath, '/' + parts.join('/'), name, st, statAt, parentNode, parts);
    if (node) dir.children.set(name, node);
  }

  /**
   * Backs up a byte stream (a `pg_dump`, an export) as one file at `virtualPath`. `dictionary` (a repository of
   * version 3): its new chunks are compressed with a dictionary, the one the parent snapshot's file at this
   * path names when the repository still has it, else one made of the bytes `dictionary` gives (null: none).
   */
  async addStream(
    virtualPath: string,
    stream: Readable | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts: { chunker?: 'stream' | 'file' | 'rows'; mode?: number; dictionary?: () => Promise<Uint8Array | null> } = {},
  ): Promise<TreeNode> {
    await this.start();
    const parts = splitPath(virtualPath);
    if (parts.length === 0) throw new EngineError('a stream needs a file name');
    const dir = await this.vdir(parts.slice(0, -1));
    const chunker = new StreamChunker(this.repo.gear, this.repo.chunker(opts.chunker ?? 'stream'));
    const content: string[] = [];
    let size = 0;
    this.current = '/' + parts.join('/');
    const dictionary = opts.dictionary && this.repo.usesDictionaries && !this.repo.encrypted ? await this.streamDictionary(parts, opts.dictionary) : undefined;
    const store = async (chunks: Buffer[]) => {
      for (const c of chunks) {
        const id = this.repo.blobId(c);
        content.push(toHex(id));
        await this.saver.save(BlobType.Data, id, c, dictionary);
      }
    };
    for await (const piece of stream as AsyncIterable<Uint8Array | string>) {
      this.opts.signal?.throwIfAborted();
      const buf = typeof piece === 'string' ? Buffer.from(piece) : piece;
      size += buf.byteLength;
      this.summary.bytesRead += buf.byteLength;
      await store(chunker.push(buf));
      this.report();
    }
    await store(chunker.end());
    let node = syntheticFile(parts.at(-1)!, size, content, this.time, opts.mode ?? 0o600);
    if (dictionary !== undefined) node.dictionary = dictionary;
    // Same content as the parent's file at this path: keep its node (and times), so that the trees
    // above it are equal to the parent's and stored once, not again at every backup.
    const prev = await this.parentNodeAt(parts);
    const same = prev?.type === 'file' && prev.size === size && prev.mode === node.mode && (prev.content ?? []).join() === content.join() && prev.dictionary === node.dictionary;
    if (same) node = { ...prev, content };
    dir.children.set(node.name, node);
    this.paths.push('/' + parts.join('/'));
    if (same) this.summary.filesUnmodified++;
    else this.summary.filesNew++;
    this.summary.bytesTotal += size;
    this.report();
    return node;
  }

  /**
   * The dictionary of a stream: the parent's, while the repository has it (the chunks that did not change
   * keep their stored bytes, and the ones that did are compressed like them), else a new one stored now.
   */
  private async streamDictionary(parts: string[], make: () => Promise<Uint8Array | null>): Promise<string | undefined> {
    const prev = await this.parentNodeAt(parts);
    const reuse = prev?.type === 'file' ? prev.dictionary : undefined;
    if (reuse !== undefined && isHexId(reuse) && this.repo.reusable(fromHex(reuse))) {
      try {
        await this.repo.loadDictionaries([{ dictionary: reuse }]);
        return reuse;
      } catch (err) {
        this.opts.progress?.notice?.(`dictionary of ${'/' + parts.join('/')} unreadable, making another: ${(err as Error).message}`);
      }
    }
    const sample = await make();
    if (!sample || sample.length === 0) return undefined;
    const bytes = asRawDictionary(sample);
    const id = this.repo.blobId(bytes);
    // Stored like any blob, without a dictionary; one stored with a dictionary already (a chunk with these very
    // bytes) cannot be one: no dictionary then.
    if (this.repo.index.get(id)?.dictionary !== undefined) return undefined;
    await this.saver.save(BlobType.Data, id, bytes);
    this.repo.useDictionary(toHex(id), bytes);
    return toHex(id);
  }

  /** A small generated file (a manifest, an export). */
  addBytes(virtualPath: string, data: Uint8Array, opts: { mode?: number } = {}): Promise<TreeNode> {
    return this.addStream(virtualPath, [data], { chunker: 'file', mode: opts.mode ?? 0o644 });
  }

  /** Writes trees, packs, index and the snapshot; releases the lock. */
  async commit(opts: { meta?: Record<string, unknown> } = {}): Promise<SnapshotInfo> {
    await this.start();
    try {
      const rootId = await this.saveVDir(this.root);
      await this.saver.flush();
      this.summary.blobsNew = this.saver.stats.blobsNew;
      this.summary.bytesAdded = this.saver.stats.bytesAdded;
      this.summary.durationMs = Date.now() - this.started;
      const snapshot = {
        version: this.repo.config.version,
        time: this.time.toISOString(),
        tree: rootId,
        paths: this.paths,
        hostname: this.opts.hostname ?? osHostname(),
        server: this.opts.server,
        tag: this.opts.tag,
        ...(this.parent ? { parent: this.parent.id } : {}),
        program: PROGRAM,
        ...(opts.meta ? { meta: opts.meta } : {}),
        summary: { ...this.summary },
      };
      const id = await this.repo.saveSnapshot(snapshot);
      await this.saveCache({ ...snapshot, id });
      return { ...snapshot, id };
    } finally {
      await this.lock?.release();
      this.lock = undefined;
    }
  }

  /** The next backup's files cache; failing to write it costs only speed. */
  private async saveCache(snapshot: SnapshotInfo): Promise<void> {
    if (!this.cacheOut || !this.opts.cacheDir) return;
    try {
      await this.cacheOut.save(this.cachePath, snapshot.id);
      await rememberSnapshot(this.repo, snapshot, this.opts.cacheDir);
    } catch (err) {
      this.opts.progress?.notice?.(`files cache not written (the next backup reads the snapshot's trees instead): ${(err as Error).message}`);
    }
  }

  /** Gives up: what was written stays as unreferenced packs (reused by the next backup, or pruned). */
  async abort(): Promise<void> {
    await this.saver.flush().catch(() => {});
    await this.lock?.release();
    this.lock = undefined;
  }

  // --- directory trees -------------------------------------------------------------------------

  private async archiveEntry(fsPath: string, vpath: string, name: string, st: BigIntStats, statAt: number, parentNode: TreeNode | undefined, vparts: string[]): Promise<TreeNode | null> {
    const node = nodeFromStat(name, st);
    if (node.type === 'dir') return this.archiveDir(fsPath, vpath, node, parentNode?.type === 'dir' ? parentNode.subtree : undefined, vparts);
    if (node.type === 'symlink') {
      node.target = await readlink(fsPath);
      return node;
    }
    if (node.type !== 'file') return node;
    this.summary.bytesTotal += node.size;
    await this.archiveFile(fsPath, vpath, node, parentNode, vparts, st, statAt);
    return node;
  }

  private async archiveDir(fsPath: string, vpath: string, node: TreeNode, parentTreeId: string | undefined, vparts: string[]): Promise<TreeNode | null> {
    return (await this.walkDir(fsPath, vpath, node, parentTreeId, vparts)).done;
  }

  /**
   * Walks a directory: resolves once every entry below it is on its way (its files queued for the codec
   * workers, its subdirectories walked the same way), with a promise of its node, settled once its files are
   * stored and its tree saved. The walk goes on into the next directory meanwhile, so that the workers never
   * wait for a directory to be finished; files in flight are bounded (fileSlot), and so is the memory of the walk.
   */
  private async walkDir(fsPath: string, vpath: string, node: TreeNode, parentTreeId: string | undefined, vparts: string[]): Promise<{ done: Promise<TreeNode | null> }> {
    let names: string[];
    try {
      names = await this.lister.names(fsPath);
    } catch (err) {
      this.fail(vpath, err);
      return { done: Promise.resolve(null) };
    }
    names.sort(compareNames);
    let parentNodes: Map<string, TreeNode> | undefined;
    // With a files cache, each file is found there: the parent's tree is not decoded at all.
    if (parentTreeId && !this.cache) {
      try {
        parentNodes = new Map((await this.repo.loadTree(parentTreeId)).nodes.map((n) => [n.name, n]));
      } catch (err) {
        this.opts.progress?.notice?.(`parent tree of ${vpath} unreadable, reading its files again: ${(err as Error).message}`);
      }
    }
    const statAt = Date.now();
    const paths = names.map((n) => childPath(fsPath, n));
    const stats = await this.lister.stats(paths);
    const nodes: (TreeNode | null)[] = new Array(names.length).fill(null);
    const pending: Promise<void>[] = [];
    // Settled by Promise.all below once the walk of this directory is done; handled at once so that a
    // failure meanwhile is not reported as unhandled (the walk goes on until it reaches it).
    const wait = (p: Promise<void>) => {
      p.catch(() => {});
      pending.push(p);
    };
    for (let i = 0; i < names.length; i++) {
      this.opts.signal?.throwIfAborted();
      const turn = this.turn.entry();
      if (turn) await turn;
      const st = stats[i];
      const childV = vpath === '/' ? `/${names[i]}` : `${vpath}/${names[i]}`;
      if (st instanceof Error) {
        if ((st as NodeJS.ErrnoException).code !== 'ENOENT') this.fail(childV, st);
        continue;
      }
      const child = nodeFromStat(names[i], st);
      const prev = parentNodes?.get(names[i]);
      if (child.type === 'dir') {
        const { done } = await this.walkDir(paths[i], childV, child, prev?.type === 'dir' ? prev.subtree : undefined, [...vparts, names[i]]);
        wait(done.then((n) => void (nodes[i] = n)));
      } else if (child.type === 'symlink') {
        try {
          child.target = await readlink(paths[i]);
          nodes[i] = child;
        } catch (err) {
          this.fail(childV, err);
        }
      } else if (child.type === 'file') {
        nodes[i] = child;
        this.summary.bytesTotal += child.size;
        let known: CachedFile | undefined;
        if (this.cache) {
          known = this.cachedFile(childV, st);
          // Most files of an incremental run: taken from the files cache here, without a promise of their own.
          if (known.entry >= 0 && !this.cache.racy(known.entry) && this.reuseCachedEntry(known.entry, childV, child, st, statAt, known.where)) continue;
        }
        const slot = this.filesInFlight.acquire();
        if (slot) await slot;
        wait(
          this.archiveFile(paths[i], childV, child, prev, vparts, st, statAt, known)
            .catch((err) => {
              nodes[i] = null;
              this.fail(childV, err);
            })
            .finally(() => this.filesInFlight.release()),
        );
      } else {
        nodes[i] = child;
      }
    }
    const done = Promise.all(pending).then(async () => {
      const tree: Tree = { nodes: nodes.filter((n): n is TreeNode => n !== null) };
      // Every entry as in the parent snapshot: its tree is the parent's, already stored (no encoding, no hashing).
      const unchanged = parentTreeId !== undefined && parentNodes !== undefined && sameEntries(tree.nodes, parentNodes) && this.repo.reusable(fromHex(parentTreeId));
      node.subtree = unchanged ? parentTreeId : await this.saveTree(tree);
      this.summary.dirs++;
      return node;
    });
    return { done };
  }

  /** `known`: what the files cache knows of it, when the walk looked it up already (the content was not taken). */
  private async archiveFile(fsPath: string, vpath: string, node: TreeNode, prev: TreeNode | undefined, vparts: string[], st: BigIntStats, statAt: number, known?: CachedFile): Promise<void> {
    const where = known?.where ?? (this.cacheOut ? pathHash(vpath) : 0);
    if (this.cache) return this.archiveCachedFile(fsPath, vpath, node, st, statAt, known ?? { ...this.cachedFile(vpath, st), tried: false });
    if (prev && prev.type === 'file' && prev.size === node.size && prev.mtime === node.mtime && prev.ctime === node.ctime && prev.inode === node.inode && this.allIndexed(prev.content)) {
      node.content = prev.content ?? [];
      this.cacheOut?.add(st, statAt, where, node.content);
      this.count(vpath, 'unmodified');
      return;
    }
    const hardlinkKey = node.links > 1 ? `${node.device}:${node.inode}` : undefined;
    const linked = hardlinkKey ? this.hardlinks.get(hardlinkKey) : undefined;
    if (linked) {
      node.content = linked;
      this.cacheOut?.add(st, statAt, where, linked);
      this.count(vpath, prev ? 'changed' : 'new');
      return;
    }
    if (this.opts.renameDetection !== false && this.parent) {
      const moved = await this.findRenamed(node, vparts, prev);
      if (moved) {
        node.content = moved;
        this.cacheOut?.add(st, statAt, where, moved);
        this.count(vpath, 'renamed');
        return;
      }
    }
    await this.read(fsPath, node, st, statAt, where);
    this.count(vpath, prev ? 'changed' : 'new');
  }

  /** What the files cache knows of a file: its entry (-1: none), and where the file is (its path's hash). */
  private cachedFile(vpath: string, st: BigIntStats): CachedFile {
    return { entry: this.cache!.find(st, (id) => this.repo.reusable(id)), where: pathHash(vpath), tried: true };
  }

  /** Takes the content of cache entry `e` (not racy) when the file is as recorded, or moved here unchanged. */
  private reuseCachedEntry(e: number, vpath: string, node: TreeNode, st: BigIntStats, statAt: number, where: number): boolean {
    const cache = this.cache!;
    const moves = this.opts.renameDetection !== false;
    const samePath = cache.samePath(e, where);
    const unchanged = cache.unchanged(e, st);
    // Unchanged elsewhere: in a folder renamed since (its files keep their ctime).
    if (!((unchanged && (samePath || moves)) || (moves && !samePath && cache.sameData(e, st)))) return false;
    node.content = cache.content(e);
    this.cacheOut!.add(st, statAt, where, cache.blobIds(e));
    this.count(vpath, unchanged && samePath ? 'unmodified' : 'renamed');
    return true;
  }

  /**
   * A file of a backup whose files cache is the parent's: unchanged (same inode, size, mtime, ctime) or moved
   * here (same inode, size and mtime, elsewhere before) by the cache; otherwise read. A file the cache does
   * not know was in no file of the parent snapshot: it is read. One recorded as racy is read too.
   */
  private async archiveCachedFile(fsPath: string, vpath: string, node: TreeNode, st: BigIntStats, statAt: number, known: CachedFile): Promise<void> {
    const cache = this.cache!;
    const { entry: e, where } = known;
    if (e >= 0 && cache.racy(e)) {
      // Changed just before the last backup stat'ed it: read again; as it was if its blobs are the same.
      await this.read(fsPath, node, st, statAt, where);
      const same = cache.samePath(e, where) && cache.unchanged(e, st) && sameIds(node.content, cache.blobIds(e));
      this.count(vpath, same ? 'unmodified' : cache.hadPath(where) ? 'changed' : 'new');
      return;
    }
    if (e >= 0 && !known.tried && this.reuseCachedEntry(e, vpath, node, st, statAt, where)) return;
    const linked = node.links > 1 ? this.hardlinks.get(`${node.device}:${node.inode}`) : undefined;
    if (linked) {
      node.content = linked;
      this.cacheOut!.add(st, statAt, where, linked);
    } else await this.read(fsPath, node, st, statAt, where);
    this.count(vpath, cache.hadPath(where) ? 'changed' : 'new');
  }

  /** Reads a file's content into its node, and records it for the next backup when it is still as stat'ed. */
  private async read(fsPath: string, node: TreeNode, st: BigIntStats, statAt: number, where: number): Promise<void> {
    const statSize = node.size;
    node.content = await this.readContent(fsPath, node);
    if (node.links > 1) this.hardlinks.set(`${node.device}:${node.inode}`, node.content);
    if (node.size === statSize) this.cacheOut?.add(st, statAt, where, node.content);
  }

  private async readContent(fsPath: string, node: TreeNode): Promise<string[]> {
    this.current = fsPath;
    const params = this.repo.chunker('file');
    if (node.size < params.max) {
      // Read whole, cut, hashed and compressed on a codec worker: the main thread only walks the tree.
      const r = await this.saver.saveFile(fsPath, node.size, params);
      if (!r.tooBig) {
        node.size = r.size;
        this.summary.bytesRead += r.size;
        return r.ids.map(toHex);
      }
      // It grew past the maximum since its stat: read it window by window like any large file.
    }
    // Read, cut, hashed and compressed on the codec workers too, a window at a time; two large files at once.
    const slot = this.largeFiles.acquire();
    if (slot) await slot;
    try {
      const r = await this.saver.saveLargeFile(
        fsPath,
        params,
        (n) => {
          this.summary.bytesRead += n;
          this.report();
        },
        node.size,
      );
      node.size = r.size;
      return r.ids.map(toHex);
    } finally {
      this.largeFiles.release();
    }
  }


  private allIndexed(content: string[] | undefined): boolean {
    if (!content) return true;
    for (const id of content) if (!this.repo.reusable(fromHex(id))) return false;
    return true;
  }

  /**
   * The parent's file with the same (device, inode, size, mtime) elsewhere under the same source. Not the
   * file at the same path: with another ctime, it was written since (its mtime set back), and is read again.
   */
  private async findRenamed(node: TreeNode, vparts: string[], prev: TreeNode | undefined): Promise<string[] | undefined> {
    const table = await this.renameTable(vparts);
    if (!table) return undefined;
    for (const [t, n] of table.find(node.device, node.inode, node.size, node.mtime)) {
      const cand = (await this.repo.loadTree(table.trees[t])).nodes[n];
      // The file at this same path (or a hard link of it with the same name and times): see above.
      if (prev && sameNode(cand, prev)) continue;
      if (cand && cand.type === 'file' && cand.device === node.device && cand.inode === node.inode && cand.size === node.size && cand.mtime === node.mtime && this.allIndexed(cand.content)) {
        return cand.content ?? [];
      }
    }
    return undefined;
  }

  /** Built on the first file that is not unchanged at its path, from the parent's tree of this source. */
  private renameTable(vparts: string[]): Promise<RenameTable | null> {
    const sourceRoot = this.paths.at(-1) ?? '/' + vparts.join('/');
    let t = this.renameTables.get(sourceRoot);
    if (!t) {
      t = this.buildRenameTable(splitPath(sourceRoot)).catch((err) => {
        this.opts.progress?.notice?.(`rename detection off for ${sourceRoot}: ${(err as Error).message}`);
        return null;
      });
      this.renameTables.set(sourceRoot, t);
    }
    return t;
  }

  private async buildRenameTable(parts: string[]): Promise<RenameTable | null> {
    const start = await this.parentNodeAt(parts);
    if (!start || start.type !== 'dir' || !start.subtree) return null;
    const table = new RenameTable();
    const stack = [start.subtree];
    while (stack.length) {
      const id = stack.pop()!;
      const tree = await this.repo.loadTree(id);
      const ord = table.trees.push(id) - 1;
      tree.nodes.forEach((n, i) => {
        if (n.type === 'file' && n.size > 0) table.add(n.device, n.inode, n.size, n.mtime, ord, i);
        else if (n.type === 'dir' && n.subtree) stack.push(n.subtree);
      });
    }
    return table;
  }

  // --- virtual directories -----------------------------------------------------------------------

  private async vdir(parts: string[], fsPathForStat?: string): Promise<VDir> {
    let dir = this.root;
    for (let i = 0; i < parts.length; i++) {
      let next = dir.children.get(parts[i]);
      if (next && !isVDir(next)) throw new EngineError(`/${parts.slice(0, i + 1).join('/')} is already a file of this snapshot`);
      if (!next) {
        next = { children: new Map() };
        dir.children.set(parts[i], next);
      }
      if (fsPathForStat && !next.meta) {
        try {
          next.meta = nodeFromStat(parts[i], await lstat('/' + parts.slice(0, i + 1).join('/'), { bigint: true }));
        } catch {
          // A parent that cannot be stat'ed gets synthetic metadata.
        }
      }
      dir = next;
    }
    return dir;
  }

  private async saveVDir(dir: VDir, parts: string[] = []): Promise<string> {
    const nodes: TreeNode[] = [];
    for (const name of [...dir.children.keys()].sort(compareNames)) {
      const child = dir.children.get(name)!;
      if (isVDir(child)) {
        const sub = await this.saveVDir(child, [...parts, name]);
        // A directory the snapshot made up (around streams and exports) keeps the parent snapshot's
        // metadata when it had one, so that its tree, and the trees above, are stored only once.
        const prev = child.meta ? undefined : await this.parentNodeAt([...parts, name]);
        const meta = child.meta ? { ...child.meta } : prev?.type === 'dir' ? { ...prev } : syntheticDir(name, this.time);
        meta.name = name;
        meta.subtree = sub;
        nodes.push(meta);
      } else nodes.push(child);
    }
    return this.saveTree({ nodes }, parts);
  }

  /** `parts`: where the tree is, for a large one to be compressed with a dictionary (treeDictionary). */
  private async saveTree(tree: Tree, parts?: string[]): Promise<string> {
    const raw = encodeTree(tree);
    const id = this.repo.blobId(raw);
    const dictionary = parts && !this.repo.reusable(id) ? await this.treeDictionary(raw, parts) : undefined;
    await this.saver.save(BlobType.Tree, id, raw, dictionary);
    return toHex(id);
  }

  /**
   * The dictionary of a large tree around streams (a dump's list of thousands of chunks, rewritten whole when a
   * few of them change): an earlier version of itself, so that the ids that did not change cost a few bytes
   * each rather than their 32. That is the parent snapshot's tree at this path when it was stored without one
   * (the key), or the key that tree was compressed with. The key is given up, and this tree stored without a
   * dictionary to be the next key, once the parent's tree took more than half of what the key takes.
   */
  private async treeDictionary(raw: Buffer, parts: string[]): Promise<string | undefined> {
    if (raw.length < TREE_DICTIONARY_MIN || raw.length > MAX_DICTIONARY_TREE || !this.repo.usesDictionaries || this.repo.encrypted) return undefined;
    const prev = parts.length === 0 ? this.parent?.tree : await this.parentNodeAt(parts).then((n) => (n?.type === 'dir' ? n.subtree : undefined));
    if (prev === undefined || !isHexId(prev)) return undefined;
    try {
      await this.repo.lookUp([prev]);
      const loc = this.repo.blobLocation(prev);
      let key = prev;
      let keyLoc = loc;
      if (loc.dictionary !== undefined) {
        key = loc.dictionary;
        await this.repo.lookUp([key]);
        keyLoc = this.repo.blobLocation(key);
        if (loc.length * 2 > keyLoc.length) return undefined;
      }
      if (keyLoc.dictionary !== undefined || keyLoc.rawLength > MAX_DICTIONARY_TREE || !this.repo.reusable(fromHex(key))) return undefined;
      await this.repo.loadDictionaries([{ dictionary: key }]);
      return key;
    } catch (err) {
      this.opts.progress?.notice?.(`parent tree of /${parts.join('/')} unreadable, storing this one whole: ${(err as Error).message}`);
      return undefined;
    }
  }

  private async parentNodeAt(parts: string[]): Promise<TreeNode | undefined> {
    if (!this.parent) return undefined;
    let treeId: string | undefined = this.parent.tree;
    let node: TreeNode | undefined;
    try {
      for (const p of parts) {
        if (!treeId) return undefined;
        node = (await this.repo.loadTree(treeId)).nodes.find((n) => n.name === p);
        if (!node) return undefined;
        treeId = node.subtree;
      }
    } catch (err) {
      this.opts.progress?.notice?.(`parent snapshot unreadable at /${parts.join('/')}: ${(err as Error).message}`);
      return undefined;
    }
    return node;
  }

  private count(path: string, status: FileStatus): void {
    if (status === 'new') this.summary.filesNew++;
    else if (status === 'changed') this.summary.filesChanged++;
    else if (status === 'renamed') this.summary.filesRenamed++;
    else this.summary.filesUnmodified++;
    this.opts.progress?.file?.(path, status);
    this.current = path;
    this.report();
  }

  private report(): void {
    if (!this.opts.progress?.update) return;
    this.summary.bytesAdded = this.saver.stats.bytesAdded;
    this.summary.blobsNew = this.saver.stats.blobsNew;
    this.opts.progress.update(this.summary, this.current);
  }

  private fail(path: string, err: unknown): void {
    // The repository failed (its disk is full...), not this source file: the backup stops with that error.
    if (err instanceof RepositoryFullError || (err !== undefined && err === this.saver.writeFailure)) throw err;
    this.summary.errors++;
    this.opts.progress?.error?.(path, err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * A file as the files cache knows it: its entry (-1: none) and its path's hash; `tried`: its content was looked
 * for there already (not racy, and not as recorded), so that it is not again.
 */
interface CachedFile {
  entry: number;
  where: number;
  tried: boolean;
}

/** lstat calls in flight at once for one directory: enough to keep libuv's pool busy, few enough to bound memory. */
const STAT_CONCURRENCY = 32;
/**
 * Synchronous calls slower than SLOW_CALL_MS (a cold disk, NFS), at least SLOW_CALLS of them and more than one in
 * eight, send the rest of the walk to libuv's pool; not a few: a page-cache miss, or the process preempted on a
 * busy machine, makes one call slow now and then.
 */
const SLOW_CALL_MS = 2;
const SLOW_CALLS = 8;
/** Synchronous calls in a row before the event loop gets a turn, and the longest such a run may hold it. */
const SYNC_RUN = 256;
const SYNC_RUN_MS = 4;

/**
 * Lists directories and stats their entries. From the page cache (the usual case: a mail spool's inodes stay
 * cached) a synchronous lstat costs a few microseconds, where a call through libuv's pool costs several times
 * that in handing over and promise resolution alone: the walk calls synchronously, in runs of at most SYNC_RUN
 * calls or SYNC_RUN_MS with an event-loop turn between runs (it shares the server's loop). Calls that take
 * longer than SLOW_CALL_MS show a storage that waits: from then on the walk's calls go to libuv's pool,
 * a bounded number in flight, and never hold the loop.
 */
class DirectoryLister {
  private sync = true;
  private slow = 0;
  private total = 0;
  private calls = 0;
  private runStart = performance.now();

  async names(dir: string): Promise<string[]> {
    if (!this.sync) return readdir(dir);
    const turn = this.turn();
    if (turn) await turn;
    const t = performance.now();
    const names = readdirSync(dir);
    this.timed(t);
    return names;
  }

  async stats(paths: string[]): Promise<(BigIntStats | Error)[]> {
    const out: (BigIntStats | Error)[] = new Array(paths.length);
    let i = 0;
    for (; i < paths.length && this.sync; i++) {
      const turn = this.turn();
      if (turn) await turn;
      const t = performance.now();
      try {
        out[i] = lstatSync(paths[i], { bigint: true });
      } catch (err) {
        out[i] = err as Error;
      }
      this.timed(t);
    }
    if (i < paths.length) await statAll(paths, out, i);
    return out;
  }

  private timed(started: number): void {
    this.total++;
    if (performance.now() - started > SLOW_CALL_MS && ++this.slow >= SLOW_CALLS && this.slow * 8 > this.total) this.sync = false;
  }

  /** An event-loop turn once the current run of synchronous calls is long enough. */
  private turn(): Promise<void> | void {
    if (++this.calls < SYNC_RUN && performance.now() - this.runStart < SYNC_RUN_MS) return;
    return new Promise<void>((r) =>
      setImmediate(() => {
        this.calls = 0;
        this.runStart = performance.now();
        r();
      }),
    );
  }
}

/**
 * lstat of the entries from `from` on, asynchronously on libuv's pool, a bounded number at a time: a
 * synchronous run of slow stat calls would hold off every request (the API, the task's event stream).
 */
async function statAll(paths: string[], out: (BigIntStats | Error)[], from: number): Promise<void> {
  let next = from;
  const lane = async () => {
    for (let i = next++; i < paths.length; i = next++) {
      try {
        out[i] = await lstat(paths[i], { bigint: true });
      } catch (err) {
        out[i] = err as Error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(STAT_CONCURRENCY, paths.length - from) }, lane));
}

/** A directory entry's path: `join` would normalise the whole path again, for each of millions of entries. */
function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** Whether a directory's entries are exactly those of its tree in the parent snapshot. */
/** Whether hex blob ids are these ids' bytes, in order. */
function sameIds(content: readonly string[] | undefined, ids: Buffer): boolean {
  if (!content || content.length * ID_BYTES !== ids.length) return false;
  return content.every((id, i) => ids.toString('hex', i * ID_BYTES, (i + 1) * ID_BYTES) === id);
}

function sameEntries(nodes: readonly TreeNode[], parent: ReadonlyMap<string, TreeNode>): boolean {
  if (nodes.length !== parent.size) return false;
  for (const n of nodes) {
    const prev = parent.get(n.name);
    if (!prev || !sameNode(n, prev)) return false;
  }
  return true;
}

function typeOf(st: BigIntStats): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  return 'blockdev';
}

function nodeFromStat(name: string, st: BigIntStats): TreeNode {
  const type = typeOf(st);
  return {
    name,
    type,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === 'file' ? Number(st.size) : 0,
    mtime: st.mtimeNs.toString(),
    ctime: st.ctimeNs.toString(),
    inode: st.ino.toString(),
    device: st.dev.toString(),
    links: Number(st.nlink),
  };
}

function nsOf(d: Date): string {
  return (BigInt(d.getTime()) * 1_000_000n).toString();
}

function syntheticFile(name: string, size: number, content: string[], time: Date, mode: number): TreeNode {
  const t = nsOf(time);
  return { name, type: 'file', mode, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, size, mtime: t, ctime: t, inode: '0', device: '0', links: 1, content };
}

function syntheticDir(name: string, time: Date): TreeNode {
  const t = nsOf(time);
  return { name, type: 'dir', mode: 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, size: 0, mtime: t, ctime: t, inode: '0', device: '0', links: 1 };
}

/** Entries handled between two yields to the event loop (see EventLoopTurn). */
const YIELD_EVERY = 256;

/**
 * Gives the event loop a turn every `every` entries. Between two awaits that resolve at once (a file
 * unchanged since the parent, a cached tree) the walk would otherwise run on microtasks only, and
 * timers, sockets and the API would wait for it; setImmediate lets their callbacks run first.
 */
export class EventLoopTurn {
  private count = 0;
  constructor(private readonly every: number) {}
  entry(): Promise<void> | void {
    if (++this.count < this.every) return;
    this.count = 0;
    return new Promise<void>((r) => setImmediate(r));
  }
}

/**
 * Files of the walk being stored at once (across directories): enough to keep the codec workers busy
 * with small files, few enough that the walk's memory stays small however large the tree.
 */
const FILES_IN_FLIGHT = 512;

/** Trees from this size are compressed with a dictionary (treeDictionary); smaller ones gain too little. */
const TREE_DICTIONARY_MIN = 64 * 1024;

class Semaphore {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  /** Nothing to wait for when a place is free: the caller goes on without an await. */
  acquire(): Promise<void> | void {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    // The place is handed over by release(): active stays counted for the waiter.
    return new Promise<void>((r) => this.queue.push(r));
  }
  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.active--;
  }
}

