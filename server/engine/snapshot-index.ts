import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repositoryCacheDir, writeCacheFile } from './files-cache.js';
import type { Repository, SnapshotFilter } from './repository.js';
import { bySnapshotTime, type SnapshotInfo } from './snapshot.js';

/** What choosing a parent needs of a snapshot. */
interface Entry {
  server: string;
  tag: string;
  time: string;
}

/**
 * The latest snapshot of (server, tag) without reading every snapshot file at every backup: a snapshot file
 * never changes (it is named by the SHA-256 of its bytes), so its server, tag and time are kept in a local file
 * (`<cache dir>/<repository id>/snapshots`, owner-only) and only the files listed but not known yet are read.
 * Ids no longer listed (forgotten) are dropped. The chosen snapshot itself is read and verified as usual; a
 * wrong entry could only choose another parent, which costs speed, never correctness (a parent only says which
 * files may be unchanged; each one is checked against its own stat).
 */
export async function latestSnapshot(repo: Repository, filter: Required<SnapshotFilter>, cacheDir: string): Promise<SnapshotInfo | null> {
  const path = pathOf(repo, cacheDir);
  const known = await readKnown(path);
  const listed: string[] = [];
  for await (const f of repo.storage.list('snapshot')) listed.push(f.name);
  const entries = new Map<string, Entry>();
  let changed = listed.length !== known.size;
  for (const id of listed) {
    let e = known.get(id);
    if (!e) {
      const s = await repo.loadSnapshot(id);
      e = { server: s.server, tag: s.tag, time: s.time };
      changed = true;
    }
    entries.set(id, e);
  }
  let best: { id: string; time: string } | undefined;
  for (const [id, e] of entries) {
    if (e.server !== filter.server || e.tag !== filter.tag) continue;
    if (!best || bySnapshotTime(best, { id, time: e.time }) < 0) best = { id, time: e.time };
  }
  if (changed) await writeKnown(path, entries).catch(() => {});
  return best ? repo.loadSnapshot(best.id) : null;
}

/** Adds a snapshot this process just wrote, so that the next backup need not read it to know it. */
export async function rememberSnapshot(repo: Repository, s: SnapshotInfo, cacheDir: string): Promise<void> {
  const path = pathOf(repo, cacheDir);
  const known = await readKnown(path);
  known.set(s.id, { server: s.server, tag: s.tag, time: s.time });
  await writeKnown(path, known);
}

function pathOf(repo: Repository, cacheDir: string): string {
  return join(repositoryCacheDir(cacheDir, repo.config.id), 'snapshots');
}

async function readKnown(path: string): Promise<Map<string, Entry>> {
  try {
    const doc = JSON.parse(await readFile(path, 'utf8')) as { version?: number; snapshots?: Record<string, Entry> };
    if (doc.version !== 1 || typeof doc.snapshots !== 'object' || doc.snapshots === null) return new Map();
    const out = new Map<string, Entry>();
    for (const [id, e] of Object.entries(doc.snapshots)) {
      if (typeof e?.server === 'string' && typeof e.tag === 'string' && typeof e.time === 'string') out.set(id, e);
    }
    return out;
  } catch {
    // None yet, or unreadable: every snapshot file is read, and the file written again.
    return new Map();
  }
}

async function writeKnown(path: string, entries: Map<string, Entry>): Promise<void> {
  await writeCacheFile(path, [Buffer.from(JSON.stringify({ version: 1, snapshots: Object.fromEntries(entries) }))]);
}
