import { BlobIdSet, BlobType } from './blob-index.js';
import { EngineError } from './errors.js';
import { fromHex, sha256, toHex } from './hash.js';
import type { IndexFile } from './index-file.js';
import type { PackBuilder, PackEntry } from './pack.js';
import { DEFAULT_PRUNE_GRACE_MS, readPruneMarks, writePruneMarks } from './prune-marks.js';
import type { Repository } from './repository.js';

export interface PruneOptions {
  /** Repack a pack when at least this share of its bytes is unused (default 5%). */
  repackThreshold?: number;
  /**
   * How long a pack stays marked before a prune deletes it (ms, default 24 h). 0 deletes at once, for a
   * repository that no backup can be writing to meanwhile.
   */
  grace?: number;
  /** The clock, in ms since the epoch (tests move it instead of waiting). */
  now?: () => number;
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
  /** Packs this prune marked for deletion (unused, or repacked). */
  packsMarked: number;
  /** Marked packs that a snapshot written meanwhile needs: kept, and no longer marked. */
  packsUnmarked: number;
  /** Packs marked and waiting for their grace period, after this prune, and their bytes. */
  packsPending: number;
  bytesPending: number;
}

/**
 * Removes what no snapshot needs, in two phases: a prune marks the packs no snapshot needs (or that it
 * repacked) and deletes only packs marked by an earlier prune whose grace period has passed and that
 * still hold nothing a snapshot needs. A backup that was running when a pack was marked (its lock not
 * seen on an eventually consistent store, or taken over as stale) may reference that pack: it has
 * written its snapshot before the grace period ends, and the deleting prune sees it. Backups that start
 * after the mark store the blobs of marked packs again instead of reusing them (Repository.reusable).
 *
 * Safe to interrupt at any point: new packs, then a new index that supersedes the old ones, then old
 * index files, then the marks, then old packs. Until the last step, every blob stays reachable through
 * some index. Takes an exclusive lock.
 */
export async function prune(repo: Repository, opts: PruneOptions = {}): Promise<PruneSummary> {
  const grace = opts.grace ?? DEFAULT_PRUNE_GRACE_MS;
  if (!(grace >= 0) || !Number.isFinite(grace)) throw new EngineError(`invalid prune grace period ${grace}: expected a duration of 0 or more`);
  const lock = await repo.lock(true, 'prune', opts.progress?.notice);
  try {
    const summary = await pruneLocked(repo, { ...opts, grace });
    if (!opts.dryRun) await repo.reloadIndex();
    return summary;
  } finally {
    await lock.release();
  }
}

async function pruneLocked(repo: Repository, opts: PruneOptions & { grace: number }): Promise<PruneSummary> {
  const s: PruneSummary = {
    packsDeleted: 0, packsRepacked: 0, packsWritten: 0, packsKept: 0, blobsRemoved: 0, bytesFreed: 0, indexFilesWritten: 0, indexFilesDeleted: 0,
    packsMarked: 0, packsUnmarked: 0, packsPending: 0, bytesPending: 0,
  };
  const threshold = opts.repackThreshold ?? 0.05;
  const now = (opts.now ?? Date.now)();
  const p = opts.progress;

  // Temp files of writers that died.
  if (!opts.dryRun) await repo.storage.removeStaleTempFiles?.();

  // Every index file, with every pack it lists; every pack stored; the marks of earlier prunes.
  const oldIndexes: string[] = [];
  const packs = new Map<string, PackEntry[]>();
  /** The dictionary of each pack that has one (FORMAT.md, "Dictionaries"). */
  const packDictionaries = new Map<string, string>();
  // The repository's own table is read anew too: the trees of snapshots written by other processes since
  // it was loaded are found through it.
  await repo.reloadIndex((name, idx) => {
    oldIndexes.push(name);
    for (const pk of idx.packs) {
      if (packs.has(pk.id)) continue;
      packs.set(pk.id, pk.blobs);
      if (pk.dictionary !== undefined) packDictionaries.set(pk.id, pk.dictionary);
    }
  });
  const sizes = new Map<string, number>();
  for await (const f of repo.storage.list('data')) sizes.set(f.name, f.size);
  const marks = await readPruneMarks(repo.storage, repo.cipher);
  const marksAsRead = JSON.stringify([...marks]);
  // A marked pack already gone: a prune deleted it and was interrupted before it rewrote the marks.
  for (const pack of [...marks.keys()]) if (!sizes.has(pack)) marks.delete(pack);

  // Which blobs the snapshots need.
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
        // A stream's dictionary stays while a snapshot names it: its next backup compresses with it again.
        if (n.dictionary) used.add(fromHex(n.dictionary));
      }
    }
    p?.update?.('mark', i + 1, snapshots.length);
  }
  // A dictionary is needed while a blob a snapshot needs is compressed with it.
  for (const [pack, dictionary] of packDictionaries) {
    if ((packs.get(pack) ?? []).some((b) => b.dictionary !== undefined && used.has(b.id))) used.add(fromHex(dictionary));
  }

  // Marked packs whose grace period has passed go, unless a snapshot written since the mark needs a blob
  // that no other pack holds: then the pack is kept and judged again below like any other.
  const due = new Set<string>();
  for (const [pack, t] of marks) if (now - t >= opts.grace) due.add(pack);
  const elsewhere = new BlobIdSet();
  for (const [pack, blobs] of packs) if (!due.has(pack) && sizes.has(pack)) for (const b of blobs) elsewhere.add(b.id);
  for (const pack of due) {
    if (!(packs.get(pack) ?? []).some((b) => used.has(b.id) && !elsewhere.has(b.id))) continue;
    due.delete(pack);
    marks.delete(pack);
    s.packsUnmarked++;
    p?.notice?.(`pack ${pack.slice(0, 12)} was marked for deletion but a snapshot written since needs it: kept`);
  }

  // Decide for every pack not marked: unused or in no index -> marked; partly used -> repacked; else kept.
  const unused: string[] = [];
  const repack: string[] = [];
  const keep: string[] = [];
  for (const pack of sizes.keys()) {
    if (marks.has(pack)) continue;
    const blobs = packs.get(pack);
    if (!blobs) {
      unused.push(pack);
      continue;
    }
    let usedBytes = 0;
    let total = 0;
    for (const b of blobs) {
      total += b.length;
      if (used.has(b.id)) usedBytes += b.length;
    }
    if (usedBytes === 0) unused.push(pack);
    else if (total - usedBytes > threshold * total) repack.push(pack);
    else keep.push(pack);
  }
  for (const pack of unused) {
    marks.set(pack, now);
    if (opts.grace === 0) due.add(pack);
  }
  s.packsMarked = unused.length + repack.length;
  s.packsKept = keep.length;
  s.packsRepacked = repack.length;
  const removedBlobs = (pack: string) => (packs.get(pack) ?? []).filter((b) => !used.has(b.id)).length;
  const pending = (gone: ReadonlySet<string>) => {
    for (const pack of marks.keys()) {
      if (gone.has(pack)) continue;
      s.packsPending++;
      s.bytesPending += sizes.get(pack) ?? 0;
    }
  };

  if (opts.dryRun) {
    for (const pack of due) {
      s.bytesFreed += sizes.get(pack) ?? 0;
      s.blobsRemoved += removedBlobs(pack);
    }
    s.packsDeleted = due.size;
    // What the repack would write: the used blobs of the repacked packs, in packs of packSize.
    let bytes = 0;
    for (const pack of repack) {
      for (const b of packs.get(pack)!) if (used.has(b.id)) bytes += b.length;
      if (opts.grace === 0) {
        s.bytesFreed += sizes.get(pack) ?? 0;
        s.blobsRemoved += removedBlobs(pack);
        s.packsDeleted++;
      } else marks.set(pack, now);
    }
    s.packsWritten = bytes > 0 ? Math.max(1, Math.ceil(bytes / repo.config.packSize)) : 0;
    pending(opts.grace === 0 ? new Set([...due, ...repack]) : due);
    return s;
  }

  // Every pack an index lists, minus those deleted: marked packs stay indexed until they go, so that a
  // backup that reuses one of their blobs meanwhile finds it.
  const gone = new Set<string>();
  const listed = () => [...packs.keys()].filter((pk) => !gone.has(pk)).map((id) => ({ id, ...withDictionary(packDictionaries.get(id)), blobs: packs.get(id)! }));
  const deleteDue = async (packsToDelete: Iterable<string>) => {
    const list = [...packsToDelete];
    // The marks still list them while they are deleted: an interrupted prune finishes the job next
    // time, and no backup indexes them as packs of an interrupted backup meanwhile.
    await writePruneMarks(repo.storage, marks, repo.cipher);
    let i = 0;
    for (const pack of list) {
      s.bytesFreed += sizes.get(pack) ?? 0;
      s.blobsRemoved += removedBlobs(pack);
      await repo.deletePack(pack);
      marks.delete(pack);
      s.packsDeleted++;
      p?.update?.('delete', ++i, list.length);
    }
    await writePruneMarks(repo.storage, marks, repo.cipher);
  };

  // 1. Free space first, so that a prune works on a full disk: an index without the due packs supersedes
  //    the old ones, then they go.
  let current = oldIndexes;
  if (due.size > 0 || (repack.length === 0 && oldIndexes.length > 1)) {
    for (const pack of due) gone.add(pack);
    current = await replaceIndexes(repo, listed(), current, s);
    await deleteDue(due);
  } else if (JSON.stringify([...marks]) !== marksAsRead) {
    await writePruneMarks(repo.storage, marks, repo.cipher);
  }
  if (repack.length === 0) {
    pending(gone);
    return s;
  }

  // 2. Repack: copy the used blobs of partly used packs (stored bytes as they are, no recompression),
  //    index the new packs beside the old ones, then mark the old ones (deleted at once with no grace).
  const kept = new BlobIdSet();
  for (const pack of keep) for (const b of packs.get(pack)!) kept.add(b.id);
  const written: IndexFile['packs'] = [];
  // One builder per type, and per dictionary for the data blobs compressed with one (a pack names one).
  const builders = new Map<string, PackBuilder>();
  const builderKey = (b: PackEntry) => (b.dictionary !== undefined ? `d${b.dictionary}` : `t${b.type}`);
  const flush = async (key: string) => {
    const b = builders.get(key);
    if (!b || b.blobCount === 0) return;
    builders.delete(key);
    const parts = b.finish();
    const id = toHex(sha256(parts));
    await repo.writePack(id, parts);
    written.push({ id, ...withDictionary(key.startsWith('d') ? key.slice(1) : undefined), blobs: b.entries });
    s.packsWritten++;
  };
  for (const [i, pack] of repack.entries()) {
    const data = await repo.storage.read('data', pack);
    for (const b of packs.get(pack)!) {
      if (!used.has(b.id)) continue;
      if (!kept.add(b.id)) continue;
      const key = builderKey(b);
      let builder = builders.get(key);
      if (!builder) builders.set(key, (builder = repo.packBuilder()));
      builder.add(b.id, b.type, Buffer.from(data.subarray(b.offset, b.offset + b.length)), b.zstd, b.rawLength, b.dictionary);
      if (builder.size >= repo.config.packSize) await flush(key);
    }
    p?.update?.('repack', i + 1, repack.length);
  }
  for (const key of [...builders.keys()]) await flush(key);
  for (const pack of repack) marks.set(pack, now);
  if (opts.grace === 0) for (const pack of repack) gone.add(pack);
  await replaceIndexes(repo, [...listed(), ...written], current, s);
  if (opts.grace === 0) await deleteDue(repack);
  else await writePruneMarks(repo.storage, marks, repo.cipher);
  pending(gone);
  return s;
}

const withDictionary = (dictionary: string | undefined) => (dictionary !== undefined ? { dictionary } : {});

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
