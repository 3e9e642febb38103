import { mkdir } from 'node:fs/promises';
import { LocalStorage, Repository, RepositoryNotFoundError } from '../../engine/index.js';

/** The repository at a settings location; created on the first backup (`create`), never by a read. */
export async function openLocation(location: string, opts: { create?: boolean } = {}): Promise<Repository | null> {
  if (/^s3:\/\//i.test(location)) throw new Error(`S3 repositories (${location}) are not supported by this build yet: use a directory`);
  const storage = new LocalStorage(location);
  try {
    return await Repository.open(storage);
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
