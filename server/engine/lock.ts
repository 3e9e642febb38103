import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RepositoryCipher } from './crypto.js';
import { LockHeldError } from './errors.js';
import { decodeJson, encodeJson } from './format.js';
import type { Storage } from './storage.js';

export interface LockInfo {
  hostname: string;
  pid: number;
  exclusive: boolean;
  purpose: string;
  created: string;
  refreshed: string;
}

export const LOCK_REFRESH_MS = 5 * 60 * 1000;
export const LOCK_STALE_MS = 30 * 60 * 1000;

export type LockNotice = (message: string) => void;

/**
 * Repository locks: a backup takes a shared lock, forget and prune an exclusive one. A lock file is
 * refreshed every 5 minutes while held; one whose owner is dead (same host) or that was not refreshed
 * for 30 minutes is stale and removed with a notice.
 */
export class RepositoryLock {
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  private constructor(
    private readonly storage: Storage,
    readonly name: string,
    private readonly info: LockInfo,
    private readonly cipher: RepositoryCipher | null,
  ) {}

  /** `cipher`: the repository's, when it is encrypted (its locks are too). */
  static async acquire(storage: Storage, exclusive: boolean, purpose: string, notice: LockNotice = () => {}, now = () => Date.now(), cipher: RepositoryCipher | null = null): Promise<RepositoryLock> {
    const name = randomBytes(16).toString('hex');
    const t = new Date(now()).toISOString();
    const info: LockInfo = { hostname: hostname(), pid: process.pid, exclusive, purpose, created: t, refreshed: t };
    await storage.write('lock', name, encodeLock(info, cipher));
    const lock = new RepositoryLock(storage, name, info, cipher);
    try {
      // No atomic rename or conditional write is needed: every process writes its own lock, then lists.
      // On a store whose listings lag, it waits out the lag first; of two processes locking at once, the
      // one that wrote last then lists after the other's lock is listable, so at least one sees the other.
      if ((storage.listingLagMs ?? 0) > 0) await sleep(storage.listingLagMs);
      for (const other of await readLocks(storage, cipher)) {
        if (other.name === name) continue;
        const stale = staleReason(other.info, now());
        if (stale) {
          notice(`removing stale lock ${other.name.slice(0, 8)} of ${other.info.purpose} (pid ${other.info.pid} on ${other.info.hostname}): ${stale}`);
          await storage.delete('lock', other.name);
          continue;
        }
        if (exclusive || other.info.exclusive) {
          throw new LockHeldError(
            `repository ${storage.location} is locked ${other.info.exclusive ? 'exclusively ' : ''}by ${other.info.purpose} ` +
              `(pid ${other.info.pid} on ${other.info.hostname}, since ${other.info.created}); try again when it has finished`,
          );
        }
      }
    } catch (err) {
      await storage.delete('lock', name).catch(() => {});
      throw err;
    }
    lock.timer = setInterval(() => void lock.refresh(now), LOCK_REFRESH_MS);
    lock.timer.unref();
    return lock;
  }

  async refresh(now = () => Date.now()): Promise<void> {
    if (this.released) return;
    this.info.refreshed = new Date(now()).toISOString();
    await this.storage.write('lock', this.name, encodeLock(this.info, this.cipher)).catch(() => {});
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.storage.delete('lock', this.name);
  }
}

/** A lock file: plain JSON (format 1), or sealed JSON in an encrypted repository. */
function encodeLock(info: LockInfo, cipher: RepositoryCipher | null): Buffer {
  return cipher ? encodeJson(info, cipher, 'lock') : Buffer.from(JSON.stringify(info));
}

export async function readLocks(storage: Storage, cipher: RepositoryCipher | null = null): Promise<{ name: string; info: LockInfo }[]> {
  const out: { name: string; info: LockInfo }[] = [];
  for await (const f of storage.list('lock')) {
    try {
      const file = await storage.read('lock', f.name);
      out.push({ name: f.name, info: cipher ? decodeJson<LockInfo>(file, `lock ${f.name.slice(0, 8)}`, cipher, 'lock') : (JSON.parse(file.toString('utf8')) as LockInfo) });
    } catch {
      // Deleted meanwhile or half-written by an old version: not a lock we can honour.
    }
  }
  return out;
}

function staleReason(info: LockInfo, now: number): string | null {
  if (info.hostname === hostname() && info.pid !== process.pid && !processAlive(info.pid)) return 'its process is gone';
  const age = now - Date.parse(info.refreshed);
  if (!(age < LOCK_STALE_MS)) return `not refreshed for ${Math.round(age / 60000)} minutes`;
  return null;
}

/** Whether a process of this host exists (EPERM: it does, it is someone else's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A process killed while its parent (or an init that does not reap) has not collected it yet still answers
  // signal 0: on Linux its state says it is a zombie, dead for every purpose here.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
