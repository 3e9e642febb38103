import type { InjectionToken } from 'tsyringe';
import type { HostPort } from '../../host/port.js';

/** The installation being backed up (the reference host in the standalone console and the tests). */
export const HOST_PORT: InjectionToken<HostPort> = Symbol('dp.HostPort');

export interface BackupConfig {
  /** The host's product version recorded in each generation (BlueMind's version). */
  productVersion: string;
  /** Post-backup action timeout. */
  hookTimeoutMs?: number;
}

export const BACKUP_CONFIG: InjectionToken<BackupConfig> = Symbol('dp.BackupConfig');
