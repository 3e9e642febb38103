import { Readable } from 'node:stream';
import { NotFoundError } from './errors.js';
import type { Repository } from './repository.js';
import type { SnapshotInfo } from './snapshot.js';
import { splitPath, type TreeNode } from './tree.js';

/** The node at `path` of a snapshot ("/" is the root directory). */
export async function findNode(repo: Repository, snapshot: SnapshotInfo, path: string): Promise<TreeNode> {
  const parts = splitPath(path);
  let node: TreeNode = { name: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: '0', ctime: '0', inode: '0', device: '0', links: 1, subtree: snapshot.tree };
  for (const p of parts) {
    if (node.type !== 'dir' || !node.subtree) throw new NotFoundError(`${path}: not in snapshot ${snapshot.id.slice(0, 8)}`);
    const next = await repo.treeEntry(node.subtree, p);
    if (!next) throw new NotFoundError(`${path}: not in snapshot ${snapshot.id.slice(0, 8)}`);
    node = next;
  }
  return node;
}

/** The entries of a directory of a snapshot. */
export async function readDir(repo: Repository, snapshot: SnapshotInfo, path: string): Promise<TreeNode[]> {
  const node = await findNode(repo, snapshot, path);
  if (node.type !== 'dir') throw new NotFoundError(`${path}: not a directory in snapshot ${snapshot.id.slice(0, 8)}`);
  return node.subtree ? (await repo.loadTree(node.subtree)).nodes : [];
}

/** Stored bytes read at once from one pack by `openFile` (blobs that follow each other there). */
const RUN_BYTES = 1 << 20;
/** Blobs of a file looked up together by `openFile` (their locations are kept: a bounded number at a time). */
const LOOKUP_WINDOW = 4096;

/** Per content list (trees are cached, so one list per file node), the offset in the file where each blob starts. */
const startsOf = new WeakMap<string[], Float64Array>();
async function blobStarts(repo: Repository, ids: string[]): Promise<Float64Array> {
  let starts = startsOf.get(ids);
  if (!starts) {
    const lengths = await repo.rawLengths(ids);
    starts = new Float64Array(ids.length + 1);
    for (let i = 0; i < ids.length; i++) starts[i + 1] = starts[i] + lengths[i];
    startsOf.set(ids, starts);
  }
  return starts;
}

/** A file of a snapshot, or the bytes [start, end) of it, in one buffer (a small file, a range of a large one). */
export async function readFileBytes(repo: Repository, snapshot: SnapshotInfo, path: string, range?: { start: number; end: number }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of openFile(repo, snapshot, path, range)) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

/**
 * Streams one file of a snapshot (a database dump to pg_restore, an entity export), blob by blob, verified.
 * With `range`, only the bytes [start, end) of the file, reading only the blobs that hold them.
 */
export function openFile(repo: Repository, snapshot: SnapshotInfo, path: string, range?: { start: number; end: number }): Readable {
  async function* blobs(): AsyncGenerator<Buffer> {
    const node = await findNode(repo, snapshot, path);
    if (node.type !== 'file') throw new NotFoundError(`${path}: not a file in snapshot ${snapshot.id.slice(0, 8)}`);
    let ids = node.content ?? [];
    // The blobs over the range, and where the first one starts in the file (sizes from the index).
    let skip = 0;
    let want = Infinity;
    if (range) {
      if (range.start < 0 || range.end < range.start || range.end > node.size) throw new NotFoundError(`${path}: bytes ${range.start}-${range.end} are not in the file (${node.size} bytes)`);
      // Where each blob starts, found by halving: a file of thousands of blobs read range by range (the
      // containers of one user in a large dump) looks up a few blobs per range, not every blob before it.
      const starts = await blobStarts(repo, ids);
      let lo = 0;
      let hi = ids.length;
      while (hi - lo > 1) {
        const mid = (lo + hi) >>> 1;
        if (starts[mid] <= range.start) lo = mid;
        else hi = mid;
      }
      let last = lo;
      while (last < ids.length && starts[last] < range.end) last++;
      skip = range.start - starts[lo];
      ids = range.end > range.start ? ids.slice(lo, last) : [];
      want = range.end - range.start;
    }
    // Blobs adjacent in a pack are read together (up to RUN_BYTES); a few runs ahead, so that storage latency
    // overlaps with the consumer.
    const ahead: Promise<Buffer[]>[] = [];
    let next = 0;
    // Looked up LOOKUP_WINDOW blobs at a time: through the index cache, one read for many, not one per bucket.
    let lookedUp = 0;
    while (next < ids.length || ahead.length) {
      while (ahead.length < 4 && next < ids.length) {
        if (next >= lookedUp) {
          lookedUp = Math.min(ids.length, next + LOOKUP_WINDOW);
          await repo.lookUp(ids.slice(next, lookedUp));
        }
        const run = [ids[next++]];
        let loc = repo.blobLocation(run[0]);
        let bytes = loc.length;
        while (next < ids.length) {
          const l = repo.blobLocation(ids[next]);
          if (l.pack !== loc.pack || l.offset !== loc.offset + loc.length || bytes + l.length > RUN_BYTES) break;
          run.push(ids[next++]);
          bytes += l.length;
          loc = l;
        }
        const p = repo.readBlobRun(run);
        p.catch(() => {});
        ahead.push(p);
      }
      for (let b of await ahead.shift()!) {
        if (skip) {
          b = b.subarray(skip);
          skip = 0;
        }
        if (b.length > want) b = b.subarray(0, want);
        want -= b.length;
        if (b.length) yield b;
      }
    }
  }
  return Readable.from(blobs(), { objectMode: false });
}

/** Every node below a tree, depth first, with its path. */
export async function* walkTree(repo: Repository, treeId: string, prefix = ''): AsyncGenerator<{ path: string; node: TreeNode }> {
  const tree = await repo.loadTree(treeId);
  for (const node of tree.nodes) {
    const path = `${prefix}/${node.name}`;
    yield { path, node };
    if (node.type === 'dir' && node.subtree) yield* walkTree(repo, node.subtree, path);
  }
}
