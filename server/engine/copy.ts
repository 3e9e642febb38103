import { BlobType } from './blob-index.js';
import { EngineError, RepositoryDamagedError } from './errors.js';
import { fromHex, toHex } from './hash.js';
import type { RepositoryLock } from './lock.js';
import type { Repository } from './repository.js';
import { BlobSaver } from './saver.js';
import type { Snapshot, SnapshotInfo } from './snapshot.js';
import { decodeTree, encodeTree, type TreeNode } from './tree.js';

/** Blobs read from the source at once: bounds memory (the saver bounds what waits for the codec). */
const READS_AT_ONCE = 8;

export interface CopyProgress {
  /** Bytes of file content walked (copied or found in the destination). */
  bytesDone: number;
  /** Blobs stored in the destination, and the bytes of pack files written there. */
  blobsNew: number;
  bytesAdded: number;
}

export interface CopierOptions {
  progress?: (p: CopyProgress) => void;
  notice?: (message: string) => void;
}

export interface CopyVerification {
  snapshots: number;
  trees: number;
  blobs: number;
  /** Blobs read back and checked against their id (with readData). */
  blobsRead: number;
}

/**
 * Copies snapshots from one repository into another, storing only the blobs the destination lacks.
 *
 * When both repositories name blobs alike (both plain, or encrypted with the same master key), ids carry over and a
 * blob the destination has is never read. Otherwise (encryption on one side only, or other keys) each blob is read
 * from the source, decoded, and stored under the destination's id for it; the trees then name other ids, so they
 * are rewritten bottom-up, and the snapshot is a new file. Write order is the backup's (packs, index, snapshot), so
 * a copy killed at any moment leaves the destination readable, and the next copy picks up the packs it left.
 */
export class SnapshotCopier {
  /** Source and destination name blobs alike: ids, trees and snapshot files carry over unchanged. */
  readonly sameIds: boolean;
  private readonly saver: BlobSaver;
  /** Source id -> destination id, for blobs and trees handled by this copier (re-keyed copies). */
  private readonly ids = new Map<string, string | Promise<string>>();
  /** Trees copied by this copier (same ids): their whole subtree is in the destination or pending in the saver. */
  private readonly treesDone = new Set<string>();
  private readonly gate = new Gate(READS_AT_ONCE);
  private locks: RepositoryLock[] = [];
  private bytesDone = 0;

  constructor(
    readonly from: Repository,
    readonly to: Repository,
    private readonly opts: CopierOptions = {},
  ) {
    const a = from.cipher?.key.id ?? null;
    const b = to.cipher?.key.id ?? null;
    this.sameIds = a === null ? b === null : b !== null && a.equals(b);
    this.saver = new BlobSaver(to);
  }

  /**
   * Takes a shared lock on both sides (a prune of the source waits; the destination is written as by a backup) and
   * indexes the packs an interrupted copy left in the destination, so they are not written again.
   */
  async start(): Promise<void> {
    if (this.from.config.id === this.to.config.id) throw new EngineError(`${this.from.location} and ${this.to.location} are the same repository: nothing to copy`);
    const notice = (m: string) => this.opts.notice?.(m);
    this.locks.push(await this.from.lock(false, `copy to ${this.to.location}`, notice));
    this.locks.push(await this.to.lock(false, `copy from ${this.from.location}`, notice));
    await this.to.loadPruneMarks();
    await this.to.indexOrphanPacks(notice);
  }

  async finish(): Promise<void> {
    const locks = this.locks;
    this.locks = [];
    for (const l of locks) await l.release().catch(() => {});
  }

  /** What was stored in the destination so far. */
  get stats(): CopyProgress {
    return { bytesDone: this.bytesDone, ...this.saver.stats };
  }

  /**
   * Copies one snapshot's blobs, then writes it in the destination with `meta` (the source's by default) and
   * `parent` (the destination's id of its parent, or none). Returns the destination's snapshot.
   */
  async copy(snap: SnapshotInfo, opts: { meta?: Record<string, unknown>; parent?: string | null } = {}): Promise<SnapshotInfo> {
    const tree = await this.copyTree(snap.tree);
    await this.saver.flush();
    const { id: _id, parent: _parent, ...rest } = snap;
    const parent = opts.parent === undefined ? snap.parent : opts.parent ?? undefined;
    const unchanged = tree === snap.tree && parent === snap.parent && opts.meta === undefined;
    if (unchanged && this.sameIds) {
      // The very file: the same name in both repositories.
      if (!(await this.to.storage.stat('snapshot', snap.id))) await this.to.storage.write('snapshot', snap.id, await this.from.storage.read('snapshot', snap.id));
      return { ...snap };
    }
    const copied: Snapshot = { ...rest, tree, ...(parent ? { parent } : {}), ...(opts.meta !== undefined ? { meta: opts.meta } : {}) };
    const id = await this.to.saveSnapshot(copied);
    return { ...copied, id };
  }

  /**
   * Checks that every tree and blob the destination's snapshots need is there: trees read and decoded, data blobs
   * indexed in a pack that exists and is long enough; with `readData`, every data blob read back and checked.
   */
  async verify(snapshots: readonly SnapshotInfo[], opts: { readData?: boolean } = {}): Promise<CopyVerification> {
    const result: CopyVerification = { snapshots: snapshots.length, trees: 0, blobs: 0, blobsRead: 0 };
    const packSizes = new Map<string, Promise<number | null>>();
    const seenTrees = new Set<string>();
    const seenBlobs = new Set<string>();
    const checkBlob = async (id: string) => {
      if (seenBlobs.has(id)) return;
      seenBlobs.add(id);
      const loc = this.to.blobLocation(id);
      let size = packSizes.get(loc.pack);
      if (!size) packSizes.set(loc.pack, (size = this.to.packSize(loc.pack)));
      const actual = await size;
      if (actual === null) throw new RepositoryDamagedError(`copy to ${this.to.location}: pack ${loc.pack.slice(0, 12)} of blob ${id.slice(0, 12)} is missing`);
      if (actual < loc.offset + loc.length) throw new RepositoryDamagedError(`copy to ${this.to.location}: pack ${loc.pack.slice(0, 12)} is shorter than its index says`);
      result.blobs++;
      if (opts.readData) {
        await this.gate.run(() => this.to.readBlob(id));
        result.blobsRead++;
      }
    };
    const walk = async (treeId: string): Promise<void> => {
      if (seenTrees.has(treeId)) return;
      seenTrees.add(treeId);
      const tree = await this.to.loadTree(treeId);
      result.trees++;
      const jobs: Promise<void>[] = [];
      for (const n of tree.nodes) {
        if (n.type === 'dir' && n.subtree) await walk(n.subtree);
        else for (const b of n.content ?? []) jobs.push(checkBlob(b));
      }
      await Promise.all(jobs);
    };
    for (const s of snapshots) {
      await this.to.loadSnapshot(s.id);
      await walk(s.tree);
    }
    return result;
  }

  /** Copies a tree and everything under it; returns its id in the destination. */
  private async copyTree(id: string): Promise<string> {
    if (this.sameIds ? this.treesDone.has(id) : this.ids.has(id)) return this.sameIds ? id : this.ids.get(id)!;
    const raw = await this.from.readBlob(id);
    const tree = decodeTree(raw, id);
    const nodes: TreeNode[] = new Array<TreeNode>(tree.nodes.length);
    const files: Promise<void>[] = [];
    for (let i = 0; i < tree.nodes.length; i++) {
      const n = tree.nodes[i];
      if (n.type === 'dir' && n.subtree) {
        const subtree = await this.copyTree(n.subtree);
        nodes[i] = subtree === n.subtree ? n : { ...n, subtree };
      } else if (n.content?.length) {
        files.push(
          Promise.all(n.content.map((b) => this.copyData(b))).then((content) => {
            nodes[i] = content.every((c, k) => c === n.content![k]) ? n : { ...n, content };
            this.bytesDone += n.size;
            this.report();
          }),
        );
      } else nodes[i] = n;
    }
    await Promise.all(files);
    if (this.sameIds) {
      // Equal ids: the tree's own bytes are valid as they are.
      if (!this.to.reusable(fromHex(id))) await this.saver.save(BlobType.Tree, fromHex(id), raw);
      this.treesDone.add(id);
      return id;
    }
    const bytes = encodeTree({ ...tree, nodes });
    const newId = this.to.blobId(bytes);
    await this.saver.save(BlobType.Tree, newId, bytes);
    const hex = toHex(newId);
    this.ids.set(id, hex);
    return hex;
  }

  /** A data blob: stored in the destination unless it is there already; its id there. */
  private copyData(id: string): Promise<string> {
    if (this.sameIds) {
      if (this.to.reusable(fromHex(id))) return Promise.resolve(id);
      return this.gate.run(async () => {
        if (!this.to.reusable(fromHex(id))) await this.saver.save(BlobType.Data, fromHex(id), await this.from.readBlob(id));
        return id;
      });
    }
    const known = this.ids.get(id);
    if (known !== undefined) return Promise.resolve(known);
    const job = this.gate.run(async () => {
      const raw = await this.from.readBlob(id);
      const newId = this.to.blobId(raw);
      await this.saver.save(BlobType.Data, newId, raw);
      const hex = toHex(newId);
      this.ids.set(id, hex);
      return hex;
    });
    this.ids.set(id, job);
    return job;
  }

  private report(): void {
    this.opts.progress?.(this.stats);
  }
}

/** At most `limit` jobs at a time. */
class Gate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    while (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await job();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
