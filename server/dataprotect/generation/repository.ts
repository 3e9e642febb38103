import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { LocalStorage, Repository, RepositoryNotFoundError } from '../../engine/index.js';

/**
 * A cheap fingerprint of a repository's generations: the names of its snapshot files (written once, deleted by
 * forget), without reading any. Changes whenever a run, a forget or a retention anywhere touched the repository.
 */
export async function snapshotFingerprint(location: string): Promise<string> {
  if (/^s3:\/\//i.test(location)) return '';
  const names: string[] = [];
  for await (const f of new LocalStorage(location).list('snapshot')) names.push(f.name);
  return createHash('sha256').update(names.sort().join('\n')).digest('hex');
}

/** The repository at a settings location; created on the first backup (`create`), never by a read. */
export async function openLocation(location: string, opts: { create?: boolean; loadIndex?: boolean } = {}): Promise<Repository | null> {
  if (/^s3:\/\//i.test(location)) throw new Error(`S3 repositories (${location}) are not supported by this build yet: use a directory`);
  const storage = new LocalStorage(location);
  try {
    return await Repository.open(storage, { loadIndex: opts.loadIndex });
  } catch (err) {
    if (!(err instanceof RepositoryNotFoundError)) throw err;
    if (!opts.create) return null;
    await mkdir(location, { recursive: true });
    try {
      return await Repository.init(storage);
    } catch (e) {
      // Another node created it in between.
      if (/already exists/.test((e as Error).message)) return Repository.open(storage);
      throw e;
    }
  }
}
