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

  for (const pack of remove) {
    s.bytesFreed += sizes.get(pack) ?? 0;
    for (const b of packs.get(pack) ?? []) if (!used.has(b.id)) s.blobsRemoved++;
  }
  s.packsDeleted = remove.size;
  s.packsKept = keep.length;
  s.packsRepacked = repack.length;
  if (opts.dryRun) {
    // What the repack would write: the used blobs of the repacked packs, in packs of packSize.
    let bytes = 0;
    for (const pack of repack) {
      s.bytesFreed += sizes.get(pack) ?? 0;
      for (const b of packs.get(pack)!) if (!used.has(b.id)) s.blobsRemoved++;
      else bytes += b.length;
    }
    s.packsWritten = bytes > 0 ? Math.max(1, Math.ceil(bytes / repo.config.packSize)) : 0;
    return s;
  }

  // 1. Free space first, so that a prune works on a full disk: packs no index lists go at once; packs of
  //    which nothing is used go once a (small) index without them supersedes the old ones.
  let current = oldIndexes;
  const unindexed = [...remove].filter((pk) => !packs.has(pk));
  for (const pack of unindexed) await repo.deletePack(pack);
  const unused = [...remove].filter((pk) => packs.has(pk));
  const asIs = (list: string[]) => list.map((id) => ({ id, blobs: packs.get(id)! }));
  if (unused.length > 0 || (repack.length === 0 && oldIndexes.length > 1)) {
    current = await replaceIndexes(repo, asIs([...keep, ...repack]), current, s);
    let i = 0;
    for (const pack of unused) {
      await repo.deletePack(pack);
      p?.update?.('delete', ++i, unused.length);
    }
  }
  if (repack.length === 0) return s;

  // 2. Repack: copy the used blobs of partly used packs (stored bytes as they are, no recompression),
  //    index the new packs in place of the old ones, then delete the old ones.
  const kept = new BlobIdSet();
  for (const pack of keep) for (const b of packs.get(pack)!) kept.add(b.id);
  const written: IndexFile['packs'] = [];
  const builders: Record<BlobType, PackBuilder> = { [BlobType.Data]: new PackBuilder(), [BlobType.Tree]: new PackBuilder() };
  const flush = async (type: BlobType) => {
    const b = builders[type];
    if (b.blobCount === 0) return;
    builders[type] = new PackBuilder();
    const parts = b.finish();
    const id = toHex(sha256(parts));
    await repo.writePack(id, parts);
    written.push({ id, blobs: b.entries });
    s.packsWritten++;
  };
  for (const [i, pack] of repack.entries()) {
    const data = await repo.storage.read('data', pack);
    for (const b of packs.get(pack)!) {
      if (!used.has(b.id)) {
        s.blobsRemoved++;
        continue;
      }
      if (!kept.add(b.id)) continue;
      builders[b.type].add(b.id, b.type, Buffer.from(data.subarray(b.offset, b.offset + b.length)), b.zstd, b.rawLength);
      if (builders[b.type].size >= repo.config.packSize) await flush(b.type);
    }
    p?.update?.('repack', i + 1, repack.length);
  }
  await flush(BlobType.Data);
  await flush(BlobType.Tree);
  await replaceIndexes(repo, [...asIs(keep), ...written], current, s);
  for (const pack of repack) {
    s.bytesFreed += sizes.get(pack) ?? 0;
    await repo.deletePack(pack);
  }
  return s;
}

/**
 * Writes index files (each under ~150k blobs) for `packs`, superseding `old`, then deletes the old ones;
 * returns the names of the new ones.
 */
async function replaceIndexes(repo: Repository, packs: IndexFile['packs'], old: string[], s: PruneSummary): Promise<string[]> {
  const written: string[] = [];
  let chunk: IndexFile['packs'] = [];
  let count = 0;
  for (const pk of packs) {
    chunk.push(pk);
    count += pk.blobs.length;
    if (count >= 150_000) {
      written.push(await repo.writeIndex(chunk, old));
      chunk = [];
      count = 0;
    }
  }
  if (chunk.length) written.push(await repo.writeIndex(chunk, old));
  s.indexFilesWritten += written.length;
  for (const name of old) {
    if (written.includes(name)) continue;
    await repo.deleteIndexFile(name);
    s.indexFilesDeleted++;
  }
  return written;
}
