import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, opendir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { processAlive, RESERVED_REFERENCE_NAMES, type FileInfo, type FileType, type Storage } from '../engine/index.js';

const DIRS: Record<FileType, string> = { config: '', data: 'data', index: 'index', snapshot: 'snapshots', lock: 'locks', reference: '' };

/**
 * A repository in a local directory or an NFS mount. Data packs are spread over 256 sub-folders
 * (data/00 .. data/ff) as restic does, so that no folder holds millions of entries.
 * Writes go to a dot-file in the same folder, are fsynced, renamed into place and the folder is
 * fsynced, so a crash leaves either the whole file or nothing; listings skip dot-files.
 * References (`latest`) sit beside `config` at the root, where scripts have always found them.
 */
export class LocalStorage implements Storage {
  constructor(readonly root: string) {}

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
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.tmp-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
    try {
      const parts = Buffer.isBuffer(data) ? [data] : data;
      await fh.writev(parts as Uint8Array[]);
      // Locks are rewritten every few minutes and lose nothing if a crash drops them: no fsync.
      if (type !== 'lock') await fh.sync();
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await fh.close();
    await rename(tmp, p);
    if (type !== 'lock') await syncDir(dir);
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
    const dirs = [this.root, join(this.root, 'index'), join(this.root, 'snapshots'), join(this.root, 'locks')];
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
