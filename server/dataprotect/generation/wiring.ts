import type { DependencyContainer } from 'tsyringe';
import type { HostPort } from '../../host/port.js';
import type { BackupRunner, GenerationService } from '../services.js';
import { GenerationCache } from './cache.js';
import { RepositoryBackups } from './runner.js';
import { BACKUP_CONFIG, HOST_PORT, type BackupConfig } from './tokens.js';

/**
 * The factories a composition root hands to registerServer (`backups`, `generations`): one RepositoryBackups
 * per container serves both, over the given host.
 */
export function backupServices(host: HostPort, config: BackupConfig): {
  backups: (c: DependencyContainer) => BackupRunner;
  generations: (c: DependencyContainer) => GenerationService;
} {
  const one = (c: DependencyContainer): RepositoryBackups => {
    if (!c.isRegistered(HOST_PORT)) {
      c.register(HOST_PORT, { useValue: host });
      c.register(BACKUP_CONFIG, { useValue: config });
      c.registerSingleton(GenerationCache);
      c.registerSingleton(RepositoryBackups);
    }
    return c.resolve(RepositoryBackups);
  };
  return { backups: one, generations: one };
}
