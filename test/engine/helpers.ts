import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Prng } from '../../server/demo/prng.js';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';

export interface ManifestEntry {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Modification time, microseconds (what utimes can set back exactly). */
  mtimeUs: string;
  sha256?: string;
  target?: string;
  /** Paths sharing this entry's inode (hard links), sorted; same on both sides when links restore as links. */
  linkGroup?: string;
}

/** Everything a byte-exact restore must reproduce, for every entry below `root`. */
export async function manifest(root: string, opts: { dirTimes?: boolean } = {}): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  const inodes = new Map<string, string[]>();
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name);
      const st = await lstat(p, { bigint: true });
      const rel = relative(root, p);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
      const e: ManifestEntry = {
        path: rel,
        type,
        mode: Number(st.mode & 0o7777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: type === 'file' ? Number(st.size) : 0,
        mtimeUs: type === 'dir' && opts.dirTimes === false ? '' : (st.mtimeNs / 1000n).toString(),
      };
      if (type === 'file') {
        e.sha256 = createHash('sha256').update(await readFile(p)).digest('hex');
        if (st.nlink > 1n) {
          const k = st.ino.toString();
          inodes.set(k, [...(inodes.get(k) ?? []), rel]);
          (e as ManifestEntry & { ino?: string }).linkGroup = k;
        }
      }
      if (type === 'symlink') e.target = await readlink(p);
      out.push(e);
      if (type === 'dir') await walk(p);
    }
  };
  await walk(root);
  for (const e of out) if (e.linkGroup) e.linkGroup = inodes.get(e.linkGroup)!.sort().join('|');
  return out;
}

export async function tempDir(prefix = 'dp-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

export async function newRepo(dir: string): Promise<Repository> {
  return Repository.init(new LocalStorage(join(dir, 'repo')));
}

export async function openRepo(dir: string): Promise<Repository> {
  return Repository.open(new LocalStorage(join(dir, 'repo')));
}

/** Deterministic pseudo-random bytes (xorshift32), compressible only as much as `text` says. */
export function bytesOf(seed: number, length: number, text = false): Buffer {
  const rng = new Prng(seed | 0 || 1, 'xorshift32');
  if (!text) {
    const b = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) b[i] = rng.uint32() & 0xff;
    return b;
  }
  const b = Buffer.allocUnsafe(length);
  const words = ['mail', 'the ', 'backup ', 'of ', 'bluemind ', 'calendar ', 'contacts\n', 'restore ', 'and ', 'server '];
  let o = 0;
  while (o < length) o += b.write(words[rng.uint32() % words.length], o);
  return b;
}

/** Pack files of the repository whose header lists only blobs of `type`. */
export async function packTypes(repo: Repository): Promise<Map<string, Set<number>>> {
  const out = new Map<string, Set<number>>();
  for await (const f of repo.storage.list('data')) {
    const entries = await repo.readPackHeader(f.name, f.size);
    out.set(f.name, new Set(entries.map((e) => e.type)));
  }
  return out;
}
