import { BlobIdSet, BlobType } from './blob-index.js';
import { fromHex, sha256, toHex } from './hash.js';
import type { IndexFile } from './index-file.js';
import { PackBuilder, type PackEntry } from './pack.js';
import type { Repository } from './repository.js';

export interface PruneOptions {
  /** Repack a pack when at least this share of its bytes is unused (default 5%). */
  repackThreshold?: number;
  dryRun?: boolean;
  progress?: { update?(phase: string, done: number, total: number): void; notice?(m: string): void };
}

export interface PruneSummary {
  packsDeleted: number;
  packsRepacked: number;
  packsWritten: number;
  packsKept: number;
  blobsRemoved: number;
  bytesFreed: number;
  indexFilesWritten: number;
  indexFilesDeleted: number;
}

/**
 * Removes what no snapshot needs, mark and sweep. Safe to interrupt at any point: new packs, then a
 * new index that supersedes the old ones, then old index files, then old packs. Until the last step,
 * every blob stays reachable through some index. Needs an exclusive lock (no backup runs meanwhile).
 */
export async function prune(repo: Repository, opts: PruneOptions = {}): Promise<PruneSummary> {
  const lock = await repo.lock(true, 'prune', opts.progress?.notice);
  try {
    const summary = await pruneLocked(repo, opts);
    if (!opts.dryRun) await repo.reloadIndex();
    return summary;
  } finally {
    await lock.release();
  }
}

async function pruneLocked(repo: Repository, opts: PruneOptions): Promise<PruneSummary> {
  const s: PruneSummary = { packsDeleted: 0, packsRepacked: 0, packsWritten: 0, packsKept: 0, blobsRemoved: 0, bytesFreed: 0, indexFilesWritten: 0, indexFilesDeleted: 0 };
  const threshold = opts.repackThreshold ?? 0.05;
  const p = opts.progress;

  // Temp files of writers that died.
  if (!opts.dryRun) await repo.storage.removeStaleTempFiles?.();

  // Every index file, with every pack it lists.
  const oldIndexes: string[] = [];
  const packs = new Map<string, PackEntry[]>();
  for await (const f of repo.storage.list('index')) oldIndexes.push(f.name);
  for (const name of oldIndexes) {
    const idx = await repo.readIndexFile(name);
    for (const pk of idx.packs) if (!packs.has(pk.id)) packs.set(pk.id, pk.blobs);
  }
  const sizes = new Map<string, number>();
  for await (const f of repo.storage.list('data')) sizes.set(f.name, f.size);

  // Mark.
  const used = new BlobIdSet();
  const snapshots = await repo.listSnapshots();
  for (const [i, snap] of snapshots.entries()) {
    const stack = [snap.tree];
    while (stack.length) {
      const id = stack.pop()!;
      if (!used.add(fromHex(id))) continue;
      for (const n of (await repo.loadTree(id)).nodes) {
        if (n.subtree) stack.push(n.subtree);
        for (const b of n.content ?? []) used.add(fromHex(b));
      }
    }
    p?.update?.('mark', i + 1, snapshots.length);
  }

  // Decide per pack.
  const remove = new Set<string>();
  const repack: string[] = [];
  const keep: string[] = [];
  for (const [pack, blobs] of packs) {
    if (!sizes.has(pack)) continue;
    let usedBytes = 0;
    let total = 0;
    for (const b of blobs) {
      total += b.length;
      if (used.has(b.id)) usedBytes += b.length;
    }
    if (usedBytes === 0) remove.add(pack);
    else if (total - usedBytes > threshold * total) repack.push(pack);
    else keep.push(pack);
  }
  for (const pack of sizes.keys()) if (!packs.has(pack)) remove.add(pack);

  // Sweep: copy used blobs of repacked packs (stored bytes as they are, no recompression).
  const kept = new BlobIdSet();
  const newIndex: IndexFile['packs'] = [];
  for (const pack of keep) {
    for (const b of packs.get(pack)!) kept.add(b.id);
    newIndex.push({ id: pack, blobs: packs.get(pack)! });
  }
  const builders: Record<BlobType, PackBuilder> = { [BlobType.Data]: new PackBuilder(), [BlobType.Tree]: new PackBuilder() };
  const flush = async (type: BlobType) => {
    const b = builders[type];
    if (b.blobCount === 0) return;
    builders[type] = new PackBuilder();
    const parts = b.finish();
    const id = toHex(sha256(parts));
    if (!opts.dryRun) await repo.writePack(id, parts);
    newIndex.push({ id, blobs: b.entries });
    s.packsWritten++;
  };
  for (const [i, pack] of repack.entries()) {
    const data = opts.dryRun ? Buffer.alloc(0) : await repo.storage.read('data', pack);
    for (const b of packs.get(pack)!) {
      if (!used.has(b.id) || !kept.add(b.id)) continue;
      if (opts.dryRun) continue;
      const bytes = data.subarray(b.offset, b.offset + b.length);
      builders[b.type].add(b.id, b.type, Buffer.from(bytes), b.zstd, b.rawLength);
      if (builders[b.type].size >= repo.config.packSize) await flush(b.type);
    }
    remove.add(pack);
    s.packsRepacked++;
    p?.update?.('repack', i + 1, repack.length);
  }
  await flush(BlobType.Data);
  await flush(BlobType.Tree);

  for (const pack of remove) {
    s.bytesFreed += sizes.get(pack) ?? 0;
    for (const b of packs.get(pack) ?? []) if (!used.has(b.id)) s.blobsRemoved++;
  }
  s.packsDeleted = remove.size - s.packsRepacked;
  s.packsKept = keep.length;
  if (opts.dryRun) return s;

  // New index files (each under ~150k blobs), superseding every old one; then delete old files.
  if (remove.size > 0 || oldIndexes.length > 1) {
    let chunk: IndexFile['packs'] = [];
    let count = 0;
    const written: string[] = [];
    for (const pk of newIndex) {
      chunk.push(pk);
      count += pk.blobs.length;
      if (count >= 150_000) {
        written.push(await repo.writeIndex(chunk, oldIndexes));
        chunk = [];
        count = 0;
      }
    }
    if (chunk.length) written.push(await repo.writeIndex(chunk, oldIndexes));
    s.indexFilesWritten = written.length;
    for (const name of oldIndexes) {
      if (written.includes(name)) continue;
      await repo.deleteIndexFile(name);
      s.indexFilesDeleted++;
    }
    let i = 0;
    for (const pack of remove) {
      await repo.deletePack(pack);
      p?.update?.('delete', ++i, remove.size);
    }
  }
  return s;
}
