import { CapabilityUnavailableError } from './errors.js';
import type { BackupRunner, GenerationService, GlobalRestoreService, RehearsalService, RestoreService } from './services.js';

// Bound by the composition root for a capability this registration of the plugin does not offer: backups,
// generations and restores when the host gave it no installation to protect, and the global restore, which this
// build does not have. Each answer says what is missing in words an administrator understands; the HTTP layer
// turns it into a 501 problem document.

const NO_RUNNER =
  'Backups cannot run: no backup runner is registered (the host gave the plugin no installation to back up). Nothing was started.';
const NO_GENERATIONS =
  'Generations cannot be listed: no backup runner is registered (the host gave the plugin no installation to back up).';
const NO_RESTORE = 'Restores are not available: the host gave the plugin no installation to restore into.';
const NO_GLOBAL_RESTORE = 'Global restore is not available in this build.';
const NO_REHEARSAL =
  'Restore rehearsals are not available: the host gave the plugin no installation to rehearse a restore of. Nothing was started.';

/** The explanations per capability (the console shows its own translation of each: keep them in step). */
export const UNAVAILABLE_MESSAGES = {
  'backup-runner': NO_RUNNER,
  generations: NO_GENERATIONS,
  restore: NO_RESTORE,
  'global-restore': NO_GLOBAL_RESTORE,
  rehearsal: NO_REHEARSAL,
} as const;

export class UnavailableRehearsalService implements RehearsalService {
  start(): never {
    throw new CapabilityUnavailableError('rehearsal', NO_REHEARSAL);
  }
}

export class UnavailableGenerationService implements GenerationService {
  list(): never {
    throw new CapabilityUnavailableError('generations', NO_GENERATIONS);
  }
  get(): never {
    throw new CapabilityUnavailableError('generations', NO_GENERATIONS);
  }
  forget(): never {
    throw new CapabilityUnavailableError('generations', NO_GENERATIONS);
  }
  sync(): never {
    throw new CapabilityUnavailableError('generations', NO_GENERATIONS);
  }
  protect(): never {
    throw new CapabilityUnavailableError('generations', NO_GENERATIONS);
  }
  unprotect(): never {
    throw new CapabilityUnavailableError('generations', NO_GENERATIONS);
  }
}

export class UnavailableBackupRunner implements BackupRunner {
  start(): never {
    throw new CapabilityUnavailableError('backup-runner', NO_RUNNER);
  }
  startRecoveryPoint(): never {
    throw new CapabilityUnavailableError('backup-runner', NO_RUNNER);
  }
  applyRetention(): never {
    throw new CapabilityUnavailableError('backup-runner', NO_RUNNER);
  }
}

export class UnavailableRestoreService implements RestoreService {
  capabilities(): never {
    throw new CapabilityUnavailableError('restore', NO_RESTORE);
  }
  listEntities(): never {
    throw new CapabilityUnavailableError('restore', NO_RESTORE);
  }
  listMailFolders(): never {
    throw new CapabilityUnavailableError('restore', NO_RESTORE);
  }
  listMailMessages(): never {
    throw new CapabilityUnavailableError('restore', NO_RESTORE);
  }
  listContainers(): never {
    throw new CapabilityUnavailableError('restore', NO_RESTORE);
  }
  listContainerItems(): never {
    throw new CapabilityUnavailableError('restore', NO_RESTORE);
  }
  start(): never {
    throw new CapabilityUnavailableError('restore', NO_RESTORE);
  }
}

export class UnavailableGlobalRestoreService implements GlobalRestoreService {
  discover(): never {
    throw new CapabilityUnavailableError('global-restore', NO_GLOBAL_RESTORE);
  }
  check(): never {
    throw new CapabilityUnavailableError('global-restore', NO_GLOBAL_RESTORE);
  }
  start(): never {
    throw new CapabilityUnavailableError('global-restore', NO_GLOBAL_RESTORE);
  }
}
