import { constants as fsc } from 'node:fs';
import { chown, lchown, link, lstat, lutimes, mkdir, open, symlink, utimes, chmod, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobLocation } from './blob-index.js';
import { NotFoundError, RepositoryDamagedError } from './errors.js';
import { sha256, toHex } from './hash.js';
import { mapLimit, type Repository } from './repository.js';
import type { SnapshotInfo } from './snapshot.js';
import { splitPath, type TreeNode } from './tree.js';

export interface RestoreProgress {
  update?(s: Readonly<RestoreSummary>): void;
  error?(path: string, error: Error): void;
}

export interface RestoreOptions {
  target: string;
  /** Snapshot paths to restore (each with everything below it); all when empty. */
  include?: string[];
  progress?: RestoreProgress;
}

export interface RestoreSummary {
  files: number;
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
  /** Damage found on the way (missing or corrupted blobs), one line each. */
  damage: string[];
  durationMs: number;
}

interface FileJob {
  path: string;
  node: TreeNode;
  remaining: number;
  fh?: Promise<FileHandle>;
  failed?: boolean;
}

interface BlobJob {
  id: string;
  loc: BlobLocation;
  targets: { file: FileJob; offset: number }[];
}

const O_WRITE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW;
const AS_ROOT = process.getuid?.() === 0;

/**
 * Restores a snapshot (or some of its subtrees) under `target`, keeping each file's path.
 * Reads pack by pack, only the byte ranges of the blobs it needs, decompresses on the codec pool, and
 * writes each blob to every place it belongs (out of order, as restic does). Metadata last: hard
 * links, symlinks, then directory times from the deepest up. Nothing is written outside `target`:
 * tree names are checked when trees are read, and no existing symlink is followed.
 */
export async function restore(repo: Repository, snapshot: SnapshotInfo, opts: RestoreOptions): Promise<RestoreSummary> {
  const started = Date.now();
  const s: RestoreSummary = { files: 0, filesTotal: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, bytesTotal: 0, packsRead: 0, bytesFetched: 0, errors: 0, damage: [], durationMs: 0 };
  const fail = (path: string, err: unknown) => {
    s.errors++;
    const e = err instanceof Error ? err : new Error(String(err));
    if (e instanceof RepositoryDamagedError) s.damage.push(`${path}: ${e.message}`);
    opts.progress?.error?.(path, e);
  };

  // 1. Walk the trees: what to create where.
  const dirs: { path: string; node: TreeNode }[] = [];
  const files: FileJob[] = [];
  const links: { path: string; node: TreeNode; primary: FileJob }[] = [];
  const symlinks: { path: string; node: TreeNode }[] = [];
  const firstByInode = new Map<string, FileJob>();

  const walk = async (treeId: string, fsDir: string): Promise<void> => {
    const tree = await repo.loadTree(treeId);
    for (const node of tree.nodes) {
      const path = join(fsDir, node.name);
      if (node.type === 'dir') {
        dirs.push({ path, node });
        if (node.subtree) await walk(node.subtree, path);
      } else if (node.type === 'file') {
        const key = node.links > 1 && node.inode !== '0' ? `${node.device}:${node.inode}` : '';
        const primary = key ? firstByInode.get(key) : undefined;
        if (primary) links.push({ path, node, primary });
        else {
          const job: FileJob = { path, node, remaining: node.content?.length ?? 0 };
          files.push(job);
          if (key) firstByInode.set(key, job);
          s.filesTotal++;
          s.bytesTotal += node.size;
        }
      } else if (node.type === 'symlink') symlinks.push({ path, node });
    }
  };

  await mkdir(opts.target, { recursive: true });
  const includes = (opts.include ?? []).filter((p) => p !== '');
  if (includes.length === 0) await walk(snapshot.tree, opts.target);
  else {
    for (const inc of includes) {
      const parts = splitPath(inc);
      let treeId: string | undefined = snapshot.tree;
      let fsDir = opts.target;
      let node: TreeNode | undefined;
      for (const [i, p] of parts.entries()) {
        node = treeId ? (await repo.loadTree(treeId)).nodes.find((n) => n.name === p) : undefined;
        if (!node) throw new NotFoundError(`path ${inc} is not in snapshot ${snapshot.id.slice(0, 8)}`);
        const path = join(fsDir, p);
        if (i < parts.length - 1 || node.type === 'dir') {
          if (node.type !== 'dir') throw new NotFoundError(`path ${inc}: /${parts.slice(0, i + 1).join('/')} is not a directory`);
          if (!dirs.some((d) => d.path === path)) dirs.push({ path, node });
          if (i === parts.length - 1 && node.subtree) await walk(node.subtree, path);
        } else if (node.type === 'file') {
          const job: FileJob = { path, node, remaining: node.content?.length ?? 0 };
          files.push(job);
          s.filesTotal++;
          s.bytesTotal += node.size;
        } else if (node.type === 'symlink') symlinks.push({ path, node });
        treeId = node.subtree;
        fsDir = path;
      }
    }
  }

  // 2. Directories first (owner-only until their final mode is set at the end).
  for (const d of dirs) {
    try {
      await makeDir(d.path);
      s.dirs++;
    } catch (err) {
      fail(d.path, err);
    }
  }

  // 3. Plan: pack -> blobs -> the files and offsets that want them.
  const byPack = new Map<string, Map<string, BlobJob>>();
  for (const f of files) {
    let offset = 0;
    if (f.remaining === 0) {
      await writeWhole(f, Buffer.alloc(0)).catch((err) => ((f.failed = true), fail(f.path, err)));
      s.files++;
      continue;
    }
    for (const id of f.node.content ?? []) {
      let loc: BlobLocation;
      try {
        loc = repo.location(id);
      } catch (err) {
        f.failed = true;
        fail(f.path, err);
        break;
      }
      let blobs = byPack.get(loc.pack);
      if (!blobs) byPack.set(loc.pack, (blobs = new Map()));
      let job = blobs.get(id);
      if (!job) blobs.set(id, (job = { id, loc, targets: [] }));
      job.targets.push({ file: f, offset });
      offset += loc.rawLength;
    }
  }

  // 4. Pack by pack, two at a time: read ranges, decompress, verify, write.
  const codec = repo.codec();
  await mapLimit([...byPack.entries()], 2, async ([pack, blobs]) => {
    const jobs = [...blobs.values()].filter((j) => j.targets.some((t) => !t.file.failed)).sort((a, b) => a.loc.offset - b.loc.offset);
    if (jobs.length === 0) return;
    let stored: Buffer[];
    try {
      stored = await readRanges(repo, pack, jobs);
      s.packsRead++;
      for (const b of stored) s.bytesFetched += b.length;
    } catch (err) {
      const e = new RepositoryDamagedError(`reading pack ${pack.slice(0, 12)}: ${(err as Error).message}`);
      for (const j of jobs) for (const t of j.targets) if (!t.file.failed) ((t.file.failed = true), fail(t.file.path, e));
      return;
    }
    const raw = await codec.decompress(stored, jobs.map((j) => j.loc.zstd));
    await mapLimit(jobs, 16, async (j, i) => {
      const data = raw.outputs[i];
      const bad = raw.errors[i] ? `cannot decompress (${raw.errors[i]})` : toHex(sha256(data)) !== j.id ? 'content does not match its id' : null;
      for (const t of j.targets) {
        const f = t.file;
        if (f.failed) continue;
        if (bad) {
          f.failed = true;
          fail(f.path, new RepositoryDamagedError(`blob ${j.id.slice(0, 12)} in pack ${pack.slice(0, 12)} at ${j.loc.offset}: ${bad}`));
          continue;
        }
        try {
          if (f.node.content!.length === 1) await writeWhole(f, data);
          else await writePiece(f, data, t.offset);
          s.bytes += data.length;
          if (f.remaining === 0) s.files++;
        } catch (err) {
          f.failed = true;
          fail(f.path, err);
        }
      }
      opts.progress?.update?.(s);
    });
  });
  for (const f of files) if (f.fh) await (await f.fh).close().catch(() => {});

  // 5. Hard links, symlinks, then directory metadata deepest first.
  for (const l of links) {
    if (l.primary.failed) continue;
    try {
      await link(l.primary.path, l.path);
      s.hardlinks++;
    } catch (err) {
      fail(l.path, err);
    }
  }
  for (const l of symlinks) {
    try {
      await symlink(l.node.target ?? '', l.path);
      if (AS_ROOT) await lchown(l.path, l.node.uid, l.node.gid);
      await lutimes(l.path, nsToSeconds(l.node.mtime), nsToSeconds(l.node.mtime));
      s.symlinks++;
    } catch (err) {
      fail(l.path, err);
    }
  }
  for (const d of [...dirs].reverse()) {
    try {
      if (AS_ROOT) await chown(d.path, d.node.uid, d.node.gid);
      await chmod(d.path, d.node.mode);
      await utimes(d.path, nsToSeconds(d.node.mtime), nsToSeconds(d.node.mtime));
    } catch (err) {
      fail(d.path, err);
    }
  }
  s.durationMs = Date.now() - started;
  opts.progress?.update?.(s);
  return s;
}

/** Reads the stored bytes of `jobs` (sorted by offset), merging neighbours into one read. */
async function readRanges(repo: Repository, pack: string, jobs: BlobJob[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let i = 0;
  while (i < jobs.length) {
    let j = i;
    let end = jobs[i].loc.offset + jobs[i].loc.length;
    while (j + 1 < jobs.length && jobs[j + 1].loc.offset - end < 256 * 1024 && jobs[j + 1].loc.offset + jobs[j + 1].loc.length - jobs[i].loc.offset < 32 * 1024 * 1024) {
      j++;
      end = Math.max(end, jobs[j].loc.offset + jobs[j].loc.length);
    }
    const start = jobs[i].loc.offset;
    const buf = await repo.storage.read('data', pack, start, end - start);
    for (let k = i; k <= j; k++) out.push(buf.subarray(jobs[k].loc.offset - start, jobs[k].loc.offset - start + jobs[k].loc.length));
    i = j + 1;
  }
  return out;
}

async function makeDir(path: string): Promise<void> {
  try {
    await mkdir(path, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const st = await lstat(path);
    if (!st.isDirectory()) throw new Error(`${path} exists and is not a directory (refusing to restore through it)`);
  }
}

async function writeWhole(f: FileJob, data: Buffer): Promise<void> {
  const fh = await open(f.path, O_WRITE, 0o600);
  try {
    if (data.length) await fh.write(data, 0, data.length, 0);
    await finishFile(fh, f.node);
  } finally {
    await fh.close();
  }
  f.remaining = 0;
}

async function writePiece(f: FileJob, data: Buffer, offset: number): Promise<void> {
  f.fh ??= open(f.path, O_WRITE, 0o600);
  const fh = await f.fh;
  await fh.write(data, 0, data.length, offset);
  if (--f.remaining === 0) {
    await finishFile(fh, f.node);
    f.fh = undefined;
    await fh.close();
  }
}

async function finishFile(fh: FileHandle, node: TreeNode): Promise<void> {
  if (AS_ROOT) await fh.chown(node.uid, node.gid);
  await fh.chmod(node.mode);
  await fh.utimes(nsToSeconds(node.mtime), nsToSeconds(node.mtime));
}

/**
 * Nanoseconds (decimal string) to the seconds Node's utimes takes. A double holds ~0.24 µs at today's
 * epoch and libuv truncates, so aim at the middle of the microsecond: times come back exact to the µs.
 */
export function nsToSeconds(ns: string): number {
  const us = BigInt(ns) / 1000n;
  return Number(us / 1_000_000n) + (Number(us % 1_000_000n) + 0.5) / 1e6;
}
