// The generations a repository holds, read from its snapshot files alone: the installation being rebuilt has
// none of the plugin's tables yet.

import type { Repository } from '../../engine/index.js';
import { NotFoundError } from '../errors.js';
import { isRecoveryPoint, readGenerations, toGeneration } from '../generation/format.js';
import { openLocation } from '../generation/repository.js';
import type { Generation } from '../model.js';

export async function openRepositoryAt(location: string): Promise<Repository> {
  const repo = await openLocation(location);
  if (!repo) throw new NotFoundError(`no repository at ${location}`);
  return repo;
}

/**
 * Newest first; generations of runs that never finished are listed INVALID. Mail recovery points are left out:
 * they hold the mail alone, and the nightly generation is the unit of a global restore.
 */
export async function discoverGenerations(repo: Repository): Promise<Generation[]> {
  return (await readGenerations(repo)).filter((g) => !isRecoveryPoint(g.record)).map((g) => toGeneration(g.record));
}
