// An export as a plain folder, for a tape system that takes files: `DIR/<generation>/SERVER/TAG/...`, with
// `DIR/last` pointing at the newest export. A file whose content and metadata did not change since the previous
// export is a hard link to it, so each export costs only what changed. What each export holds is kept beside it
// in `DIR/.bm-dataprotect/<generation>.json` (content digests from the trees), so nothing is read back to compare.

import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, readFile, readlink, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { contentDigest, openContent, type Repository, type TreeNode } from '../../engine/index.js';
import type { ExportEntry } from './entries.js';

export const LAST_LINK = 'last';
export const MANIFEST_DIR = '.bm-dataprotect';

interface ManifestFile {
  digest: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: string;
}

interface Manifest {
  kind: 'bm-dataprotect/export';
  generation: string;
  files: Record<string, ManifestFile>;
}

export interface FolderExportSummary {
  folder: string;
  files: number;
  /** Files that are hard links to the previous export's copy. */
  reused: number;
  bytesWritten: number;
  bytesReused: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  previous: string | null;
}

const AS_ROOT = process.getuid?.() === 0;

/** Same seconds arithmetic as a restore: times come back exact to the microsecond. */
function seconds(ns: string): number {
  const us = BigInt(ns) / 1000n;
  return Number(us / 1_000_000n) + (Number(us % 1_000_000n) + 0.5) / 1e6;
}

function reuseKey(f: ManifestFile): string {
  return `${f.digest}\t${f.size}\t${f.mode}\t${f.uid}\t${f.gid}\t${f.mtime}`;
}

function describe(node: TreeNode): ManifestFile {
  return { digest: contentDigest(node), size: node.size, mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime };
}

async function previousExport(dir: string): Promise<{ generation: string; manifest: Manifest } | null> {
  let generation: string;
  try {
    generation = path.basename(await readlink(path.join(dir, LAST_LINK)));
  } catch {
    return null;
  }
  try {
    const manifest = JSON.parse(await readFile(path.join(dir, MANIFEST_DIR, `${generation}.json`), 'utf8')) as Manifest;
    return manifest.kind === 'bm-dataprotect/export' && manifest.generation === generation ? { generation, manifest } : null;
  } catch {
    return null;
  }
}

async function setFileMeta(file: string, node: TreeNode): Promise<void> {
  if (AS_ROOT) await chown(file, node.uid, node.gid);
  await chmod(file, node.mode);
  await utimes(file, seconds(node.mtime), seconds(node.mtime));
}

/**
 * Writes `entries` under `DIR/<generation>` (through a hidden folder renamed at the end, so a half-written export is
 * never taken for one), then the manifest, then moves `DIR/last`. Refuses when that generation is there already.
 */
export async function exportToFolder(repo: Repository, generation: string, entries: AsyncIterable<ExportEntry>, dir: string): Promise<FolderExportSummary> {
  const root = path.resolve(dir);
  await mkdir(path.join(root, MANIFEST_DIR), { recursive: true });
  const final = path.join(root, generation);
  if (await lstat(final).then(() => true, () => false)) {
    throw new ExportExistsError(`${final} exists already: generation ${generation} was exported there before (remove it to export it again)`);
  }
  const prev = await previousExport(root);
  const reusable = new Map<string, string>();
  if (prev) for (const [p, f] of Object.entries(prev.manifest.files)) reusable.set(reuseKey(f), path.join(root, prev.generation, p));

  const work = path.join(root, `.${generation}.partial-${randomBytes(4).toString('hex')}`);
  await mkdir(work, { mode: 0o700 });
  const s: FolderExportSummary = { folder: final, files: 0, reused: 0, bytesWritten: 0, bytesReused: 0, dirs: 0, symlinks: 0, hardlinks: 0, previous: prev?.generation ?? null };
  const manifest: Manifest = { kind: 'bm-dataprotect/export', generation, files: {} };
  const dirs: { file: string; node: TreeNode }[] = [];
  try {
    for await (const e of entries) {
      const file = path.join(work, e.path);
      if (e.type === 'dir') {
        await mkdir(file, { mode: 0o700 });
        dirs.push({ file, node: e.node });
        s.dirs++;
      } else if (e.type === 'symlink') {
        await symlink(e.node.target ?? '', file);
        if (AS_ROOT) await lchown(file, e.node.uid, e.node.gid);
        await lutimes(file, seconds(e.node.mtime), seconds(e.node.mtime));
        s.symlinks++;
      } else if (e.type === 'hardlink') {
        await link(path.join(work, e.linkTo!), file);
        s.hardlinks++;
      } else {
        const meta = describe(e.node);
        manifest.files[e.path] = meta;
        s.files++;
        if (await linkPrevious(reusable.get(reuseKey(meta)), file, meta)) {
          s.reused++;
          s.bytesReused += meta.size;
          continue;
        }
        await pipeline(openContent(repo, e.node), createWriteStream(file, { flags: 'wx', mode: 0o600 }));
        await setFileMeta(file, e.node);
        s.bytesWritten += meta.size;
      }
    }
    // Directory metadata last, deepest first: writing into a directory changes its mtime.
    for (const d of dirs.reverse()) await setFileMeta(d.file, d.node);
    await rename(work, final);
  } catch (err) {
    await rm(work, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
  const manifestFile = path.join(root, MANIFEST_DIR, `${generation}.json`);
  await writeFile(`${manifestFile}.tmp`, JSON.stringify(manifest) + '\n');
  await rename(`${manifestFile}.tmp`, manifestFile);
  const tmpLink = path.join(root, `.${LAST_LINK}.${randomBytes(4).toString('hex')}`);
  await symlink(generation, tmpLink);
  await rename(tmpLink, path.join(root, LAST_LINK));
  return s;
}

/** Links the previous export's copy when it is still the file that export wrote (someone may have touched it). */
async function linkPrevious(previous: string | undefined, file: string, meta: ManifestFile): Promise<boolean> {
  if (!previous) return false;
  const st = await lstat(previous, { bigint: true }).catch(() => null);
  if (!st || !st.isFile() || st.size !== BigInt(meta.size) || Number(st.mode & 0o7777n) !== meta.mode) return false;
  if (st.mtimeNs / 1000n !== BigInt(meta.mtime) / 1000n) return false;
  if (AS_ROOT && (Number(st.uid) !== meta.uid || Number(st.gid) !== meta.gid)) return false;
  try {
    await link(previous, file);
    return true;
  } catch {
    return false;
  }
}

export class ExportExistsError extends Error {}
