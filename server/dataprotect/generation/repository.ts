import { createHash } from 'node:crypto';
import { Repository, RepositoryNotFoundError } from '../../engine/index.js';
import { environmentPassword, openStorage, passwordFromEnvironment } from '../../storage/index.js';

/**
 * A cheap fingerprint of a repository's generations: the names of its snapshot files (written once, deleted by
 * forget), without reading any. Changes whenever a run, a forget or a retention anywhere touched the repository.
 */
export async function snapshotFingerprint(location: string): Promise<string> {
  const names: string[] = [];
  for await (const f of openStorage(location).list('snapshot')) names.push(f.name);
  return createHash('sha256').update(names.sort().join('\n')).digest('hex');
}

/**
 * The repository at a settings location; created on the first backup (`create`), never by a read.
 * A location this build cannot open (relative, or an unsupported scheme such as s3://) is an error.
 * An encrypted repository opens with the password of the environment (DP_REPOSITORY_PASSWORD_FILE); with one
 * configured, a repository created here is encrypted with it.
 */
export async function openLocation(location: string, opts: { create?: boolean; loadIndex?: boolean; signal?: AbortSignal } = {}): Promise<Repository | null> {
  // A task's signal: cancelling it stops waiting for a storage that does not answer.
  const storage = openStorage(location, { signal: opts.signal });
  try {
    return await Repository.open(storage, { loadIndex: opts.loadIndex, password: environmentPassword });
  } catch (err) {
    if (!(err instanceof RepositoryNotFoundError)) throw err;
    if (!opts.create) return null;
    try {
      return await Repository.init(storage, { password: await passwordFromEnvironment() });
    } catch (e) {
      // Another node created it in between.
      if (/already exists/.test((e as Error).message)) return Repository.open(storage, { password: environmentPassword });
      throw e;
    }
  }
}
