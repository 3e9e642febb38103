import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { chmod, lstat, mkdir, open, opendir, readdir, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { processAlive, RepositoryFullError, RESERVED_REFERENCE_NAMES, type FileInfo, type FileType, type PartWriter, type Storage } from '../engine/index.js';

const DIRS: Record<FileType, string> = { config: '', data: 'data', index: 'index', snapshot: 'snapshots', lock: 'locks', reference: '', key: 'keys' };

/**
 * A repository in a local directory or an NFS mount. Data packs are spread over 256 sub-folders
 * (data/00 .. data/ff) as restic does, so that no folder holds millions of entries.
 * Writes go to a dot-file in the same folder, are fsynced, renamed into place and the folder is
 * fsynced, so a crash leaves either the whole file or nothing; listings skip dot-files.
 * References (`latest`) sit beside `config` at the root, where scripts have always found them.
 * The repository holds every secret of what it protects: folders are 0700 and files 0600, whatever the
 * umask. Every write's length is checked before the rename; a full disk is said to be one.
 */
export class LocalStorage implements Storage {
  private readonly madeDirs = new Set<string>();

  constructor(
    readonly root: string,
    /** How files are opened: tests inject a file system that runs out of space. */
    private readonly openFile: (path: string, flags: number, mode: number) => Promise<Pick<FileHandle, 'writev' | 'sync' | 'close' | 'chmod'>> = open,
  ) {}

  get location(): string {
    return this.root;
  }

  path(type: FileType, name: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.')) throw new Error(`invalid ${type} file name ${JSON.stringify(name)}`);
    if (type === 'config') return join(this.root, 'config');
    if (type === 'data') return join(this.root, 'data', name.slice(0, 2), name);
    if (type === 'reference' && RESERVED_REFERENCE_NAMES.has(name)) throw new Error(`invalid reference name ${JSON.stringify(name)}: the repository uses it`);
    return join(this.root, DIRS[type], name);
  }

  localPath(type: FileType, name: string): string {
    return this.path(type, name);
  }

  async *list(type: FileType): AsyncIterable<FileInfo> {
    if (type === 'config') {
      const s = await this.stat('config', 'config');
      if (s) yield s;
      return;
    }
    const base = join(this.root, DIRS[type]);
    const skip: ReadonlySet<string> = type === 'reference' ? RESERVED_REFERENCE_NAMES : new Set();
    const dirs = type === 'data' ? (await readdirOrEmpty(base)).filter((d) => /^[0-9a-f]{2}$/.test(d)).map((d) => join(base, d)) : [base];
    for (const dir of dirs) {
      let handle;
      try {
        handle = await opendir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      for await (const entry of handle) {
        if (entry.name.startsWith('.') || !entry.isFile() || skip.has(entry.name)) continue;
        const s = await stat(join(dir, entry.name)).catch(() => null);
        if (s) yield { name: entry.name, size: s.size };
      }
    }
  }

  async read(type: FileType, name: string, offset = 0, length?: number): Promise<Buffer> {
    const p = this.path(type, name);
    const fh = await open(p, 'r');
    try {
      const size = (await fh.stat()).size;
      const want = length ?? size - offset;
      if (offset + want > size) {
        throw new Error(`reading ${type} ${name.slice(0, 12)}: truncated at ${size} bytes (wanted ${offset}+${want})`);
      }
      const buf = Buffer.allocUnsafe(want);
      let done = 0;
      while (done < want) {
        const { bytesRead } = await fh.read(buf, done, want - done, offset + done);
        if (bytesRead === 0) throw new Error(`reading ${type} ${name.slice(0, 12)}: unexpected end at ${offset + done}`);
        done += bytesRead;
      }
      return buf;
    } finally {
      await fh.close();
    }
  }

  async write(type: FileType, name: string, data: Buffer | readonly Uint8Array[]): Promise<void> {
    const p = this.path(type, name);
    const dir = dirname(p);
    const what = `writing ${type} ${name.slice(0, 12)}`;
    let tmp = '';
    try {
      await this.ensureDir(dir);
      tmp = join(dir, `.tmp-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
      const fh = await this.openFile(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await fh.chmod(0o600);
        await writeFully(fh, Buffer.isBuffer(data) ? [data] : (data as Uint8Array[]), what);
        // Locks are rewritten every few minutes and lose nothing if a crash drops them: no fsync.
        if (type !== 'lock') await fh.sync();
      } finally {
        await fh.close().catch(() => {});
      }
      await rename(tmp, p);
      tmp = '';
    } catch (err) {
      if (tmp) await unlink(tmp).catch(() => {});
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC' && !(err instanceof RepositoryFullError)) throw await diskFull(dir, what, err);
      throw err;
    }
    if (type !== 'lock') await syncDir(dir);
  }

  /**
   * Parts go to a dot-file at the root (the file's folder depends on its name, unknown until commit), written
   * as they come; commit checks the length, fsyncs, renames into place and fsyncs the folder, as `write` does.
   */
  writeParts(type: FileType): PartWriter {
    const tmp = join(this.root, `.tmp-parts-${type}-${process.pid}-${randomBytes(4).toString('hex')}`);
    const what = `writing ${type} (in parts)`;
    let fh: Awaited<ReturnType<LocalStorage['openFile']>> | undefined;
    let size = 0;
    const fail = async (err: unknown): Promise<never> => {
      await drop();
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC' && !(err instanceof RepositoryFullError)) throw await diskFull(this.root, what, err);
      throw err;
    };
    const drop = async (): Promise<void> => {
      const f = fh;
      fh = undefined;
      await f?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
    };
    return {
      append: async (data) => {
        try {
          if (!fh) {
            await this.ensureDir(this.root);
            fh = await this.openFile(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
            await fh.chmod(0o600);
          }
          size += await writeFully(fh, data instanceof Uint8Array ? [data] : data, what, size);
        } catch (err) {
          await fail(err);
        }
      },
      commit: async (name) => {
        const p = this.path(type, name);
        const dir = dirname(p);
        try {
          if (!fh) await this.openFile(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600).then((f) => (fh = f));
          if (type !== 'lock') await fh!.sync();
          const f = fh!;
          fh = undefined;
          await f.close();
          await this.ensureDir(dir);
          await rename(tmp, p);
        } catch (err) {
          await fail(err);
        }
        if (type !== 'lock') await syncDir(dir);
      },
      abort: drop,
    };
  }

  /** Creates the folders from the root down to `dir`, each 0700 whatever the umask. */
  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    const rel = relative(this.root, dir);
    const parts = rel === '' ? [] : rel.split(sep);
    await mkdir(dirname(this.root), { recursive: true });
    let p = this.root;
    for (let i = 0; ; i++) {
      try {
        await mkdir(p, { mode: 0o700 });
        await chmod(p, 0o700);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (i === parts.length) break;
      p = join(p, parts[i]);
    }
    this.madeDirs.add(dir);
  }

  /** The repository's own entries: the root, config, references, and the folders of the other types, recursively. */
  private async *own(): AsyncGenerator<{ path: string; dir: boolean; mode: number }> {
    const root = await lstat(this.root).catch(() => null);
    if (!root?.isDirectory()) return;
    yield { path: this.root, dir: true, mode: root.mode };
    const walk = async function* (p: string): AsyncGenerator<{ path: string; dir: boolean; mode: number }> {
      const st = await lstat(p).catch(() => null);
      if (!st || st.isSymbolicLink()) return;
      if (st.isDirectory()) {
        yield { path: p, dir: true, mode: st.mode };
        for (const n of await readdirOrEmpty(p)) yield* walk(join(p, n));
      } else if (st.isFile()) yield { path: p, dir: false, mode: st.mode };
    };
    for (const name of await readdirOrEmpty(this.root)) {
      const p = join(this.root, name);
      if (['data', 'index', 'snapshots', 'locks', 'keys'].includes(name)) yield* walk(p);
      else if (name === 'config' || /^[A-Za-z0-9_.-]+$/.test(name)) {
        const st = await lstat(p).catch(() => null);
        if (st?.isFile()) yield { path: p, dir: false, mode: st.mode };
      }
    }
  }

  async restrictAccess(): Promise<number> {
    let changed = 0;
    for await (const e of this.own()) {
      const want = e.dir ? 0o700 : 0o600;
      if ((e.mode & 0o777) !== want) {
        await chmod(e.path, want);
        changed++;
      }
    }
    return changed;
  }

  async accessProblems(): Promise<string[]> {
    const out: string[] = [];
    for await (const e of this.own()) if (e.mode & 0o077) out.push(`${e.path} (${(e.mode & 0o777).toString(8).padStart(4, '0')})`);
    return out;
  }

  async delete(type: FileType, name: string): Promise<void> {
    await rm(this.path(type, name), { force: true });
  }

  async stat(type: FileType, name: string): Promise<FileInfo | null> {
    try {
      const s = await stat(this.path(type, name));
      return { name, size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Temp files left by writers that died (kill -9 during a write): those whose writer's pid is gone. */
  async removeStaleTempFiles(): Promise<number> {
    const dirs = [this.root, join(this.root, 'index'), join(this.root, 'snapshots'), join(this.root, 'locks'), join(this.root, 'keys')];
    for (const d of await readdirOrEmpty(join(this.root, 'data'))) dirs.push(join(this.root, 'data', d));
    let removed = 0;
    for (const dir of dirs) {
      for (const name of await readdirOrEmpty(dir)) {
        const m = /^\.tmp-.*-(\d+)-[0-9a-f]{8}$/.exec(name);
        if (m && !processAlive(Number(m[1]))) {
          await rm(join(dir, name), { force: true });
          removed++;
        }
      }
    }
    return removed;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Writes every byte at `at` or fails: a short write is retried for the rest, and one that writes nothing is an
 * error. Returns how many bytes it wrote.
 */
export async function writeFully(fh: Pick<FileHandle, 'writev'>, parts: readonly Uint8Array[], what: string, at = 0): Promise<number> {
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  let done = 0;
  let rest = parts.filter((p) => p.byteLength > 0);
  while (done < total) {
    const { bytesWritten } = await fh.writev(rest as Uint8Array[], at + done);
    if (!(bytesWritten > 0)) throw Object.assign(new Error(`${what}: short write at ${done} of ${total} bytes`), { code: 'EIO' });
    done += bytesWritten;
    let skip = bytesWritten;
    while (skip > 0 && rest.length) {
      if (rest[0].byteLength <= skip) {
        skip -= rest[0].byteLength;
        rest = rest.slice(1);
      } else {
        rest = [rest[0].subarray(skip), ...rest.slice(1)];
        skip = 0;
      }
    }
  }
  return total;
}

/** The error of a write that found no room: the repository's disk is full, said with what is left. */
async function diskFull(dir: string, what: string, cause: unknown): Promise<RepositoryFullError> {
  const free = await statfs(dir).then((s) => `${s.bavail * s.bsize} bytes free`, () => 'free space unknown');
  return new RepositoryFullError(`the repository's disk is full (${free}): ${what}`, { cause });
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some file systems (and NFS clients) refuse fsync on a directory; the rename is still atomic.
  } finally {
    await fh.close();
  }
}
