import { closeSync, fchmodSync, fchownSync, futimesSync, lchownSync, lutimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BlobLocation } from './blob-index.js';
import { NotFoundError, RepositoryDamagedError } from './errors.js';
import type { CodecPool, RestoreResult, RestoreWrite } from './codec-pool.js';
import { mapLimit, type Repository } from './repository.js';
import { RestoreTarget } from './restore-target.js';
import { RestoreWriter } from './restore-writes.js';
import type { SnapshotInfo } from './snapshot.js';
import { splitPath, type TreeNode } from './tree.js';
import { contentSizeProblem } from './validate.js';
import { workerSettings } from './worker-settings.js';

export interface RestoreProgress {
  update?(s: Readonly<RestoreSummary>): void;
  error?(path: string, error: Error): void;
}

export interface RestoreOptions {
  target: string;
  /** Snapshot paths to restore (each with everything below it); all when empty. */
  include?: string[];
  progress?: RestoreProgress;
  /**
   * Where blobs are decompressed and written: true only on this thread, false only on the codec workers; by
   * default on this thread for a small restore (INLINE_BYTES), else on this thread and the workers.
   */
  inline?: boolean;
}

export interface RestoreSummary {
  files: number;
  /** Files (and their bytes, `bytesTotal`) found so far: the walk goes on while the first batches are written. */
  filesTotal: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  bytes: number;
  bytesTotal: number;
  packsRead: number;
  /** Bytes read from the repository. */
  bytesFetched: number;
  errors: number;
  /** Entries not restored because a directory above them could not be (the directory's error is in `errors`). */
  skipped: number;
  /** Damage found on the way (missing or corrupted blobs), one line each. */
  damage: string[];
  durationMs: number;
}

interface FileJob {
  path: string;
  node: TreeNode;
  remaining: number;
  failed?: boolean;
}

interface BlobJob {
  id: string;
  loc: BlobLocation;
  targets: { file: FileJob; offset: number }[];
}

/** The ranges of one pack that a batch reads, each with its blobs. */
interface PackPlan {
  pack: string;
  segments: Segment[];
}

interface Segment {
  start: number;
  end: number;
  jobs: BlobJob[];
}

const AS_ROOT = process.getuid?.() === 0;

/**
 * Restores a snapshot (or some of its subtrees) under `target`, keeping each file's path.
 * Reads pack by pack, only the byte ranges of the blobs it needs, decompresses (on this thread and the
 * codec pool), and writes each blob to every place it belongs (out of order, as restic does). Metadata last: hard
 * links, symlinks, then directory times from the deepest up. Nothing is written outside `target`:
 * tree names are checked when trees are read, and every path is created through RestoreTarget, which
 * never follows a symlink on the way; a directory that cannot be restored skips everything below it.
 */
export async function restore(repo: Repository, snapshot: SnapshotInfo, opts: RestoreOptions): Promise<RestoreSummary> {
  const started = Date.now();
  const s: RestoreSummary = { files: 0, filesTotal: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, bytesTotal: 0, packsRead: 0, bytesFetched: 0, errors: 0, skipped: 0, damage: [], durationMs: 0 };
  const fail = (path: string, err: unknown) => {
    s.errors++;
    const e = err instanceof Error ? err : new Error(String(err));
    if (e instanceof RepositoryDamagedError) s.damage.push(`${path}: ${e.message}`);
    opts.progress?.error?.(path, e);
  };

  // 1. Walk the trees, creating directories as they come (owner-only until their final mode is set at the
  //    end) and gathering files in batches, each written (2, 3) before the walk goes on: a restore holds
  //    one batch's plan, not the whole snapshot's. A directory that fails takes its whole subtree with it:
  //    nothing below it is attempted (counted in `skipped`).
  const target = RestoreTarget.open(opts.target);
  const local = repo.storage.localPath?.bind(repo.storage);
  // Where blobs are written, decided with the first batch (see writeFiles).
  let here: boolean | undefined;
  let writer: RestoreWriter | null = null;
  let codec: CodecPool | null = null;
  const madeDirs: { path: string; node: TreeNode }[] = [];
  const seenDirs = new Set<string>();
  const failedDirs = new Set<string>();
  const links: { path: string; node: TreeNode; primary: FileJob }[] = [];
  const symlinks: { path: string; node: TreeNode }[] = [];
  const firstByInode = new Map<string, FileJob>();
  const skip = (path: string): boolean => {
    for (let p = dirname(path); p.length > target.root.length; p = dirname(p)) {
      if (failedDirs.has(p)) {
        s.skipped++;
        return true;
      }
    }
    return false;
  };
  const addDir = (path: string, node: TreeNode): void => {
    if (seenDirs.has(path)) return;
    seenDirs.add(path);
    if (skip(path)) {
      failedDirs.add(path);
      return;
    }
    try {
      target.makeDir(path);
      madeDirs.push({ path, node });
      s.dirs++;
    } catch (err) {
      failedDirs.add(path);
      fail(path, err);
    }
  };
  let batch: FileJob[] = [];
  let batchBlobs = 0;
  const addFile = async (job: FileJob): Promise<void> => {
    batch.push(job);
    batchBlobs += job.remaining;
    s.filesTotal++;
    s.bytesTotal += job.node.size;
    if (batch.length >= BATCH_FILES || batchBlobs >= BATCH_BLOBS) await flush(false);
  };
  const flush = async (last: boolean): Promise<void> => {
    const files = batch;
    batch = [];
    batchBlobs = 0;
    await writeFiles(files, last);
  };

  const walk = async (treeId: string, fsDir: string): Promise<void> => {
    const tree = await repo.loadTree(treeId, false);
    for (const node of tree.nodes) {
      const path = join(fsDir, node.name);
      if (node.type === 'dir') {
        addDir(path, node);
        if (node.subtree) await walk(node.subtree, path);
      } else if (node.type === 'file') {
        const key = node.links > 1 && node.inode !== '0' ? `${node.device}:${node.inode}` : '';
        const primary = key ? firstByInode.get(key) : undefined;
        if (primary) links.push({ path, node, primary });
        else {
          const job: FileJob = { path, node, remaining: node.content?.length ?? 0 };
          if (key) firstByInode.set(key, job);
          await addFile(job);
        }
      } else if (node.type === 'symlink') symlinks.push({ path, node });
    }
  };

  const includes = (opts.include ?? []).filter((p) => p !== '');
  if (includes.length === 0) await walk(snapshot.tree, target.root);
  else {
    for (const inc of includes) {
      const parts = splitPath(inc);
      let treeId: string | undefined = snapshot.tree;
      let fsDir = target.root;
      let node: TreeNode | undefined;
      for (const [i, p] of parts.entries()) {
        node = treeId ? await repo.treeEntry(treeId, p) : undefined;
        if (!node) throw new NotFoundError(`path ${inc} is not in snapshot ${snapshot.id.slice(0, 8)}`);
        const path = join(fsDir, p);
        if (i < parts.length - 1 || node.type === 'dir') {
          if (node.type !== 'dir') throw new NotFoundError(`path ${inc}: /${parts.slice(0, i + 1).join('/')} is not a directory`);
          addDir(path, node);
          if (i === parts.length - 1 && node.subtree) await walk(node.subtree, path);
        } else if (node.type === 'file') await addFile({ path, node, remaining: node.content?.length ?? 0 });
        else if (node.type === 'symlink') symlinks.push({ path, node });
        treeId = node.subtree;
        fsDir = path;
      }
    }
  }
  await flush(true);

  // 4. Hard links, symlinks, then directory metadata deepest first.
  for (const l of links) {
    if (skip(l.path) || l.primary.failed) continue;
    try {
      target.link(l.primary.path, l.path);
      s.hardlinks++;
    } catch (err) {
      fail(l.path, err);
    }
  }
  for (const l of symlinks) {
    if (skip(l.path)) continue;
    try {
      target.symlink(l.node.target ?? '', l.path);
      if (AS_ROOT) lchownSync(l.path, l.node.uid, l.node.gid);
      lutimesSync(l.path, nsToSeconds(l.node.mtime), nsToSeconds(l.node.mtime));
      s.symlinks++;
    } catch (err) {
      fail(l.path, err);
    }
  }
  for (const d of [...madeDirs].reverse()) {
    try {
      const fd = target.openDir(d.path);
      try {
        if (AS_ROOT) fchownSync(fd, d.node.uid, d.node.gid);
        fchmodSync(fd, d.node.mode);
        futimesSync(fd, nsToSeconds(d.node.mtime), nsToSeconds(d.node.mtime));
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      fail(d.path, err);
    }
  }
  s.durationMs = Date.now() - started;
  opts.progress?.update?.(s);
  return s;

  /** 2. and 3. for one batch of files (`last`: the walk is over). */
  async function writeFiles(files: FileJob[], last: boolean): Promise<void> {
    // 2. Plan: pack -> blobs -> the files and offsets that want them. Files of several blobs are created
    //    here, so that the writers only write pieces into them.
    const byPack = new Map<string, Map<string, BlobJob>>();
    // The batch's blobs located at once (through the local index cache, when the repository was opened with one).
    await repo.lookUp(files.flatMap((f) => f.node.content ?? []));
    for (const f of files) {
      if (skip(f.path)) {
        f.failed = true;
        continue;
      }
      let offset = 0;
      const content = f.node.content ?? [];
      if (content.length === 0) {
        // An empty file: created here, not worth a trip to a writer.
        try {
          closeSync(target.createFile(f.path));
          finishFileSync(target, f.path, f.node);
          s.files++;
        } catch (err) {
          f.failed = true;
          fail(f.path, err);
        }
        continue;
      }
      // Every blob located and its declared sizes checked (the same checks as `check`) before the file is created.
      let locs: BlobLocation[];
      try {
        locs = content.map((id) => repo.blobLocation(id));
        const problem = contentSizeProblem(f.node, locs.map((l) => l.rawLength));
        if (problem) throw new RepositoryDamagedError(problem);
        if (content.length > 1) closeSync(target.createFile(f.path));
      } catch (err) {
        f.failed = true;
        fail(f.path, err);
        continue;
      }
      for (const [i, id] of content.entries()) {
        const loc = locs[i];
        let blobs = byPack.get(loc.pack);
        if (!blobs) byPack.set(loc.pack, (blobs = new Map()));
        let job = blobs.get(id);
        if (!job) blobs.set(id, (job = { id, loc, targets: [] }));
        job.targets.push({ file: f, offset });
        offset += loc.rawLength;
      }
    }

    // 3. Pack by pack, a few at a time: read the ranges needed, decompress, verify and write them into the
    //    files; files of several blobs get their metadata once complete. A small restore (one batch) does that
    //    here: starting workers would cost more than its work. A larger one here and on the codec workers
    //    (one fewer than a backup's: this thread is the other writer), where a pack on a local disk is read
    //    by the worker itself, into a buffer it keeps: no range crosses threads.
    const plan: PackPlan[] = [...byPack.entries()].map(([pack, blobs]) => {
      const jobs = [...blobs.values()].sort((a, b) => a.loc.offset - b.loc.offset);
      return { pack, segments: segments(jobs, local ? LOCAL_SEGMENT : REMOTE_SEGMENT) };
    });
    byPack.clear();
    // Dictionaries of blobs of compression 2, read once and handed to the workers before any job needs them.
    // One that cannot be read fails only the files whose blobs need it (their blobs say why).
    const dictionaries = new Set(plan.flatMap((p) => p.segments.flatMap((seg) => seg.jobs.map((j) => j.loc.dictionary))));
    for (const dictionary of dictionaries) if (dictionary !== undefined) await repo.loadDictionaries([{ dictionary }]).catch(() => {});
    if (here === undefined) {
      here = opts.inline ?? ((last && isSmall(plan)) || workerSettings().workers < 2);
      writer = opts.inline === false ? null : new RestoreWriter(repo.cipher?.key ?? null, repo.dictionaries);
      codec = here ? null : repo.codec('restore');
    }
    // Lanes each take the next pack: this thread's (one: its reads from a local disk do not wait), and two per
    // worker, so that a worker has its next range while it writes one.
    const lanes: boolean[] = here ? new Array(local ? 1 : 4).fill(true) : [...(writer ? [true] : []), ...new Array(2 * codec!.size).fill(false)];
    let nextPack = 0;
    await Promise.all(
      lanes.map(async (onThisThread) => {
        while (nextPack < plan.length) await restorePack(plan[nextPack++], onThisThread);
      }),
    );
  }

  async function restorePack({ pack, segments }: PackPlan, onThisThread: boolean): Promise<void> {
    if (segments.length === 0) return;
    const unreadable = (segment: { jobs: BlobJob[] }, err: unknown) => {
      const e = new RepositoryDamagedError(`reading pack ${pack.slice(0, 12)}: ${err instanceof Error ? err.message : String(err)}`);
      for (const j of segment.jobs) for (const t of j.targets) if (!t.file.failed) ((t.file.failed = true), fail(t.file.path, e));
    };
    for (const segment of segments) {
      const length = segment.end - segment.start;
      const writes: RestoreWrite[] = [];
      const targets: BlobJob['targets'] = [];
      segment.jobs.forEach((j, bi) => {
        for (const t of j.targets) {
          if (t.file.failed) continue;
          const n = t.file.node;
          writes.push({ blob: bi, path: t.file.path, whole: n.content!.length === 1, at: t.offset, mode: n.mode, uid: n.uid, gid: n.gid, mtime: nsToSeconds(n.mtime) });
          targets.push(t);
        }
      });
      const blobList = segment.jobs.map((j) => ({ off: j.loc.offset - segment.start, len: j.loc.length, raw: j.loc.rawLength, zstd: j.loc.zstd, ...(j.loc.dictionary !== undefined ? { dictionary: j.loc.dictionary } : {}), id: j.id }));
      // What the storage cannot give is the pack's damage; a worker that fails is not, and ends the restore.
      let from: Buffer | { file: string; start: number; length: number };
      try {
        if (!local) from = await repo.storage.read('data', pack, segment.start, length);
        else from = onThisThread ? writer!.readLocal(local('data', pack), segment.start, length) : { file: local('data', pack), start: segment.start, length };
      } catch (err) {
        unreadable(segment, err);
        continue;
      }
      let r: RestoreResult;
      if (onThisThread) {
        r = writer!.write(from as Buffer, blobList, writes, target, AS_ROOT);
        writer!.trim(LOCAL_SEGMENT);
        // Synchronous work in slices of one range: a server's other requests get their turn in between.
        await new Promise(setImmediate);
      } else r = await codec!.restore(from, blobList, writes, target.root, AS_ROOT);
      if (r.readError !== undefined) {
        unreadable(segment, new Error(r.readError));
        continue;
      }
      s.bytesFetched += length;
      writes.forEach((w, i) => {
        const t = targets[i];
        const f = t.file;
        if (f.failed) return;
        const j = segment.jobs[w.blob];
        const bad = r.blobErrors[w.blob];
        if (bad) {
          f.failed = true;
          fail(f.path, new RepositoryDamagedError(`blob ${j.id.slice(0, 12)} in pack ${pack.slice(0, 12)} at ${j.loc.offset}: ${bad}`));
          return;
        }
        if (r.writeErrors[i]) {
          f.failed = true;
          fail(f.path, new Error(r.writeErrors[i]!));
          return;
        }
        s.bytes += j.loc.rawLength;
        if (w.whole) {
          f.remaining = 0;
          s.files++;
        } else if (--f.remaining === 0) {
          try {
            finishFileSync(target, f.path, f.node);
            s.files++;
          } catch (err) {
            f.failed = true;
            fail(f.path, err);
          }
        }
      });
    }
    s.packsRead++;
    opts.progress?.update?.(s);
  }

}

/**
 * Files (or blobs) gathered before a batch is written: what a restore holds at once, whatever the snapshot's
 * size (a few MiB of plan), and enough that most batches read each of their packs' ranges once.
 */
const BATCH_FILES = 1024;
const BATCH_BLOBS = 16384;

/**
 * The most one read takes: from a local disk, what each worker keeps as its read buffer (small reads cost
 * little there); from elsewhere (S3), fewer and larger requests.
 */
const LOCAL_SEGMENT = 2 * 1024 * 1024;
const REMOTE_SEGMENT = 8 * 1024 * 1024;

/** Groups blobs (sorted by offset) into ranges read at once: neighbours closer than 256 KiB, up to `max` bytes (a larger blob alone). */
function segments(jobs: BlobJob[], max: number): Segment[] {
  const out: Segment[] = [];
  for (const j of jobs) {
    const last = out.at(-1);
    const end = j.loc.offset + j.loc.length;
    if (last && j.loc.offset - last.end < 256 * 1024 && end - last.start <= max) {
      last.jobs.push(j);
      last.end = Math.max(last.end, end);
    } else out.push({ start: j.loc.offset, end, jobs: [j] });
  }
  return out;
}

/** Owner, mode and times of a file written in pieces, through a descriptor that does not follow symlinks. */
function finishFileSync(target: RestoreTarget, path: string, node: TreeNode): void {
  const fd = target.openFile(path);
  try {
    if (AS_ROOT) fchownSync(fd, node.uid, node.gid);
    fchmodSync(fd, node.mode);
    futimesSync(fd, nsToSeconds(node.mtime), nsToSeconds(node.mtime));
  } finally {
    closeSync(fd);
  }
}


/**
 * Nanoseconds (decimal string) to the seconds Node's utimes takes. A double holds ~0.24 µs at today's
 * epoch and libuv truncates, so aim at the middle of the microsecond: times come back exact to the µs.
 */
function nsToSeconds(ns: string): number {
  const us = BigInt(ns) / 1000n;
  return Number(us / 1_000_000n) + (Number(us % 1_000_000n) + 0.5) / 1e6;
}

/**
 * A restore of one batch (BATCH_FILES) and at most this many stored bytes is written on the restorer's own
 * thread. Starting a codec worker costs ~50 ms of CPU and ~12 MiB each, about what this thread spends on
 * one mailbox of a few hundred messages (~25 MB): below that the workers would cost more than they share.
 */
const INLINE_BYTES = 32 * 1024 * 1024;

function isSmall(plan: PackPlan[]): boolean {
  let bytes = 0;
  for (const p of plan) for (const s of p.segments) bytes += s.end - s.start;
  return bytes <= INLINE_BYTES;
}
