// The factory a composition root hands to registerServer (`restores`): single-entity restores over a host, reading
// the repository the settings name, sending send.* exports through the given SMTP relay (none: send.* not offered).

import type { DependencyContainer } from 'tsyringe';
import type { Repository } from '../../engine/index.js';
import type { HostPort } from '../../host/port.js';
import { TaskRegistry } from '../../jobs/task-registry.js';
import { AuditLog } from '../audit.js';
import { NotFoundError } from '../errors.js';
import { openLocation } from '../generation/repository.js';
import { SettingsService } from '../settings.js';
import type { RestoreService } from '../services.js';
import { RepositoryGenerationParts } from './generation-parts.js';
import type { Mailer } from './mailer.js';
import { EntityRestores, type RestoreBackend } from './service.js';

/** Browsing reuses one opened repository for a little while (opening loads the index). */
const SHARED_TTL_MS = 20_000;

export function settingsBackend(settings: SettingsService, host: HostPort, mailer: Mailer | null): RestoreBackend {
  let shared: { location: string; at: number; repo: Promise<Repository> } | null = null;
  const open = async (location: string): Promise<Repository> => {
    const repo = await openLocation(location);
    if (!repo) throw new NotFoundError(`no repository at ${location} yet: run a backup first`);
    return repo;
  };
  const backend: RestoreBackend = {
    host,
    mailer,
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

export function restoreServices(host: HostPort, o: { mailer: Mailer | null }): { restores: (c: DependencyContainer) => RestoreService } {
  return {
    restores: (c) => new EntityRestores(c.resolve(TaskRegistry), c.resolve(AuditLog), settingsBackend(c.resolve(SettingsService), host, o.mailer)),
  };
}
