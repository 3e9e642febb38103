// The checks a repository location passes before it is saved: where it may be (never a system folder, never inside
// the data it protects), what it may hold (nothing, or a repository of ours: a folder of other files is never
// adopted), that it answers and takes writes now (with a timeout: a hung network share must not hang the
// request), and whether it shares a filesystem with the data it protects.

import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, realpath, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PasswordError, Repository } from '../engine/index.js';
import { environmentPassword, LocalStorage, PASSWORD_FILE_ENV, S3Storage } from '../storage/index.js';
import { fsReason } from '../jobs/explain-error.js';
import { InvalidInputError } from './errors.js';

const FIELD = 'repositoryLocation';

/** Where the repository sits relative to the data it protects. */
export interface RepositoryFilesystem {
  sameAsData: boolean;
  /** The protected data folders on the repository's filesystem (same st_dev). */
  dataPaths: string[];
}

export interface CheckedLocation {
  /** Normalised: trimmed, no trailing slash. */
  location: string;
  /** null for an s3:// location. */
  filesystem: RepositoryFilesystem | null;
}

export interface LocationCheckOptions {
  /** The host's data folders (mail spool, file hosting...), for the same-filesystem report. */
  dataPaths?: () => Promise<string[]>;
  timeoutMs?: number;
  /** What looks at the folder (replaced in tests to stand for a share that never answers). */
  inspect?: (location: string, dataPaths: string[]) => Promise<RepositoryFilesystem>;
  /** What looks at an s3:// location (its endpoint and credentials come from the AWS environment). */
  inspectS3?: (location: string) => Promise<void>;
}

export const DEFAULT_LOCATION_CHECK_TIMEOUT_MS = 10_000;

/** Folders of the operating system and its services: a repository there could overwrite or expose them. */
const SYSTEM_FOLDERS = [
  '/etc', '/proc', '/sys', '/dev', '/bin', '/sbin', '/boot', '/usr', '/run', '/var/run', '/var/lock',
  '/var/lib/postgresql', '/var/lib/dpkg', '/var/lib/apt', '/var/log', '/var/cache', '/lost+found',
];

function invalid(message: string): InvalidInputError {
  return new InvalidInputError(FIELD, message);
}

function inside(p: string, folder: string): boolean {
  return p === folder || p.startsWith(folder === '/' ? '/' : `${folder}/`);
}

/** The system folder a path lies in, or null. `/` itself and /lib, /lib32, /lib64, /libx32 count too. */
export function systemFolderOf(p: string): string | null {
  if (p === '/') return '/';
  if (/^\/lib(32|64|x32)?(\/|$)/.test(p)) return `/${p.split('/')[1]}`;
  return SYSTEM_FOLDERS.find((f) => inside(p, f)) ?? null;
}

/** Syntax only: an s3:// URL, or an absolute path without `..` and without control characters. */
export function normaliseLocation(raw: string): string {
  const value = raw.trim();
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalid('must not contain control characters');
  if (/^s3:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw invalid('is not a valid s3:// URL');
    }
    if (!url.hostname) throw invalid('s3:// URL names no bucket');
    return value;
  }
  if (!path.isAbsolute(value)) throw invalid('must be an absolute directory (or an s3:// URL)');
  if (value.split('/').includes('..')) throw invalid('must not contain ".."');
  const normal = path.normalize(value);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

function refuseSystemFolder(shown: string, real: string): void {
  const sys = systemFolderOf(real);
  if (sys === '/') throw invalid(`${shown} is the root folder: choose a folder of its own, such as /var/backups/bluemind/dp`);
  if (sys) {
    const via = real === shown ? '' : ` (it leads to ${real})`;
    throw invalid(`${shown} is in the system folder ${sys}${via}: choose a folder of its own, such as /var/backups/bluemind/dp`);
  }
}

function fsProblem(what: string, err: unknown): InvalidInputError {
  return invalid(`${what}: ${fsReason(err)}`);
}

async function realpathOrNull(p: string): Promise<string | null> {
  try {
    return await realpath(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsProblem(`cannot reach ${p}`, err);
  }
}

async function isOurRepository(folder: string): Promise<boolean> {
  const config = await lstat(path.join(folder, 'config')).catch(() => null);
  if (!config?.isFile()) return false;
  try {
    const repo = await Repository.open(new LocalStorage(folder), { loadIndex: false, password: environmentPassword });
    await repo.close();
    return true;
  } catch (err) {
    if (err instanceof PasswordError) throw passwordProblem(folder, err);
    return false;
  }
}

/** An encrypted repository this service cannot open: said now, rather than by every run. */
function passwordProblem(location: string, err: PasswordError): InvalidInputError {
  if (err.reason === 'missing') {
    return invalid(`${location} is an encrypted bm-dataprotect repository and no password is configured: set ${PASSWORD_FILE_ENV} in the environment of the bm-dataprotect service to a file (mode 0600) holding its password, and restart the service`);
  }
  if (err.reason === 'wrong') return invalid(`${location} is an encrypted bm-dataprotect repository and the configured password (${PASSWORD_FILE_ENV}) is not one of its passwords`);
  return invalid(`${location} is an encrypted bm-dataprotect repository: ${err.message}`);
}

/** Writes and removes a file (or a folder, in the parent of a location still to create): the writes a backup needs. */
async function probeWrites(folder: string, shown: string, asFolder: boolean): Promise<void> {
  const probe = path.join(folder, `.dp-write-check-${randomBytes(6).toString('hex')}`);
  try {
    if (asFolder) {
      await mkdir(probe, { mode: 0o700 });
      await rmdir(probe);
    } else {
      await writeFile(probe, 'bm-dataprotect write check\n', { mode: 0o600 });
      await unlink(probe);
    }
  } catch (err) {
    throw fsProblem(`cannot write in ${shown}`, err);
  }
}

/** Looks at the folder itself: kind, content, writability, and the filesystem it shares with the data. */
export async function inspectLocation(location: string, dataPaths: string[]): Promise<RepositoryFilesystem> {
  for (const d of dataPaths) {
    if (inside(location, d)) throw invalid(`${location} is inside ${d}, data it protects: a backup would copy itself`);
  }
  let dev: number;
  const real = await realpathOrNull(location);
  if (real) {
    refuseSystemFolder(location, real);
    const st = await stat(real).catch((err) => {
      throw fsProblem(`cannot reach ${location}`, err);
    });
    if (!st.isDirectory()) throw invalid(`${location} is not a folder`);
    const entries = await readdir(real).catch((err) => {
      throw fsProblem(`cannot read ${location}`, err);
    });
    if (entries.length > 0 && !(await isOurRepository(real))) {
      const some = entries.slice(0, 3).join(', ');
      throw invalid(
        `${location} holds other files (${some}${entries.length > 3 ? ', ...' : ''}) and is not a bm-dataprotect ` +
          'repository: choose an empty folder or an existing repository',
      );
    }
    await probeWrites(real, location, false);
    dev = st.dev;
  } else {
    // Created by the first backup: the nearest folder that exists must take it.
    let parent = path.dirname(location);
    let realParent = await realpathOrNull(parent);
    while (!realParent && parent !== '/') {
      parent = path.dirname(parent);
      realParent = await realpathOrNull(parent);
    }
    if (!realParent) throw invalid(`cannot reach ${location}`);
    refuseSystemFolder(location, path.join(realParent, path.relative(parent, location)));
    const st = await stat(realParent);
    if (!st.isDirectory()) throw invalid(`${parent} is not a folder, so ${location} cannot be created`);
    await probeWrites(realParent, parent, true);
    dev = st.dev;
  }
  const same: string[] = [];
  for (const d of dataPaths) {
    const st = await stat(d).catch(() => null);
    if (st && st.dev === dev) same.push(d);
  }
  return { sameAsData: same.length > 0, dataPaths: same };
}

/** An s3:// location: the bucket answers, the prefix is empty or a repository of ours, and it takes writes. */
export async function inspectS3Location(location: string): Promise<void> {
  let storage: S3Storage;
  try {
    storage = new S3Storage(location);
  } catch (err) {
    throw invalid(`${location}: ${(err as Error).message}`);
  }
  try {
    const keys = await storage.someKeys();
    if (keys.length > 0 && !(await storage.stat('config', 'config').catch(() => null))) {
      throw invalid(`${location} holds other objects (${keys.join(', ')}) and is not a bm-dataprotect repository: choose an empty prefix or an existing repository`);
    }
    if (keys.length > 0) {
      try {
        await (await Repository.open(storage, { loadIndex: false, password: environmentPassword })).close();
      } catch (err) {
        if (err instanceof PasswordError) throw passwordProblem(location, err);
        throw invalid(`${location} holds a config object that is not a readable bm-dataprotect repository (${(err as Error).message})`);
      }
    }
    await storage.probeWrite();
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    throw invalid(`cannot use ${location}: ${(err as Error).message}`);
  } finally {
    storage.close();
  }
}

/**
 * Checks a location before it is saved; throws InvalidInputError (a 400 naming repositoryLocation) with a message
 * an administrator can act on. A folder that does not answer within the timeout is refused; the request returns.
 */
export async function checkRepositoryLocation(raw: string, o: LocationCheckOptions = {}): Promise<CheckedLocation> {
  const location = normaliseLocation(raw);
  const s3 = /^s3:\/\//i.test(location);
  const sys = s3 ? null : systemFolderOf(location);
  if (sys) refuseSystemFolder(location, location);
  const timeoutMs = o.timeoutMs ?? DEFAULT_LOCATION_CHECK_TIMEOUT_MS;
  const inspect = o.inspect ?? inspectLocation;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(invalid(`${location} did not answer within ${Math.round(timeoutMs / 100) / 10} s (an unreachable network share?): nothing was saved`)),
      timeoutMs,
    );
  });
  try {
    // Without the host's answer the location is still checked; only the same-filesystem report is poorer.
    const known = (o.dataPaths?.() ?? Promise.resolve([])).catch(() => [] as string[]);
    const dataPaths = (await Promise.race([known, timeout])).map((p) => path.resolve(p));
    if (s3) {
      await Promise.race([(o.inspectS3 ?? inspectS3Location)(location), timeout]);
      return { location, filesystem: null };
    }
    const filesystem = await Promise.race([inspect(location, dataPaths), timeout]);
    return { location, filesystem };
  } finally {
    clearTimeout(timer);
  }
}
