// Where the plugin's restores read from: the repository the settings name, shared for a little while between
// browsing calls, and one of its own for each restore task.

import type { Repository } from '../../engine/index.js';
import type { HostPort } from '../../host/port.js';
import { NotFoundError } from '../errors.js';
import { openLocation } from '../generation/repository.js';
import type { SettingsService } from '../settings.js';
import { RepositoryGenerationParts } from './generation-parts.js';
import type { Mailer } from './mailer.js';
import type { PartAgents } from '../generation/part-agents.js';
import type { RestoreBackend } from './service.js';

/** Browsing reuses one opened repository for a little while (opening loads the index). */
const SHARED_TTL_MS = 20_000;

/**
 * The restore backend of the plugin: the repository is the one the settings name (opened again when they change),
 * over the given host, with the SMTP relay for send.* exports (none: send.* is not offered).
 */
export function settingsBackend(settings: SettingsService, host: HostPort, mailer: Mailer | null, agents?: PartAgents): RestoreBackend {
  let shared: { location: string; at: number; repo: Promise<Repository> } | null = null;
  const open = async (location: string): Promise<Repository> => {
    const repo = await openLocation(location);
    if (!repo) throw new NotFoundError(`no repository at ${location} yet: run a backup first`);
    return repo;
  };
  const backend: RestoreBackend = {
    host,
    mailer,
    agents,
    async repositoryLocation() {
      return (await settings.get()).repositoryLocation;
    },
    async repository() {
      const location = (await settings.get()).repositoryLocation;
      if (!shared || shared.location !== location || Date.now() - shared.at > SHARED_TTL_MS) {
        const old = shared;
        shared = { location, at: Date.now(), repo: open(location) };
        shared.repo.catch(() => (shared = null));
        // Readers of the old one finish first.
        if (old) setTimeout(() => void old.repo.then((r) => r.close()).catch(() => {}), 5 * 60_000).unref();
      }
      return shared.repo;
    },
    async openRepository() {
      return open((await settings.get()).repositoryLocation);
    },
    generations: new RepositoryGenerationParts(() => backend.repository()),
  };
  return backend;
}
