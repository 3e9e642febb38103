import type { RepositoryCipher } from './crypto.js';
import { RepositoryDamagedError } from './errors.js';
import { decodeMetadata, encodeMetadata } from './format.js';
import type { Storage } from './storage.js';

/** The reference that lists the packs a prune marked for deletion (see FORMAT.md, "Two-phase prune"). */
export const PRUNE_MARKS_REFERENCE = 'prune-marks';

/**
 * How long a marked pack waits before a later prune deletes it: longer than any backup runs, so that a
 * backup that loaded the index before the mark (and may reuse the pack's blobs) has written its snapshot.
 */
export const DEFAULT_PRUNE_GRACE_MS = 24 * 60 * 60 * 1000;

interface PruneMarksFile {
  version: 1;
  /** Pack id -> when it was marked (ISO 8601). */
  packs: Record<string, string>;
}

/** Pack id -> when a prune marked it (ms since the epoch); empty when nothing is marked. */
export async function readPruneMarks(storage: Storage, cipher: RepositoryCipher | null = null): Promise<Map<string, number>> {
  let file: Buffer;
  try {
    file = await storage.read('reference', PRUNE_MARKS_REFERENCE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const marks = new Map<string, number>();
  try {
    if (cipher) file = decodeMetadata(file, PRUNE_MARKS_REFERENCE, cipher, `reference ${PRUNE_MARKS_REFERENCE}`);
    const parsed = JSON.parse(file.toString('utf8')) as PruneMarksFile;
    if (parsed.version !== 1 || typeof parsed.packs !== 'object' || parsed.packs === null) throw new Error('not a version 1 marks file');
    for (const [pack, when] of Object.entries(parsed.packs)) {
      const t = Date.parse(when);
      if (!/^[0-9a-f]{64}$/.test(pack) || !Number.isFinite(t)) throw new Error(`bad entry ${JSON.stringify(pack)}`);
      marks.set(pack, t);
    }
  } catch (err) {
    // Guessing here could delete a pack a snapshot needs, or keep a backup reusing one about to go.
    throw new RepositoryDamagedError(`${PRUNE_MARKS_REFERENCE}: cannot be read (${(err as Error).message}); delete it and run prune again to mark anew`);
  }
  return marks;
}

/** Rewrites the marks whole (a reader sees the old or the new list); no file at all when nothing is marked. */
export async function writePruneMarks(storage: Storage, marks: ReadonlyMap<string, number>, cipher: RepositoryCipher | null = null): Promise<void> {
  if (marks.size === 0) {
    await storage.delete('reference', PRUNE_MARKS_REFERENCE);
    return;
  }
  const packs: Record<string, string> = {};
  for (const [pack, t] of [...marks].sort((a, b) => (a[0] < b[0] ? -1 : 1))) packs[pack] = new Date(t).toISOString();
  const file: PruneMarksFile = { version: 1, packs };
  const bytes = Buffer.from(JSON.stringify(file, null, 1) + '\n');
  await storage.write('reference', PRUNE_MARKS_REFERENCE, cipher ? encodeMetadata(bytes, false, cipher, `reference ${PRUNE_MARKS_REFERENCE}`) : bytes);
}
