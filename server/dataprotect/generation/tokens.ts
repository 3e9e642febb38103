import type { InjectionToken } from 'tsyringe';
import type { HostPort } from '../../host/port.js';
import type { PartAgents } from './part-agents.js';

/** The installation backed up and restored into, as the composition root's host provides it. */
export const HOST_PORT: InjectionToken<HostPort> = Symbol('dp.HostPort');

export interface BackupConfig {
  /** The host's product version recorded in each generation (BlueMind's version). */
  productVersion: string;
  /** Post-backup action timeout. */
  hookTimeoutMs?: number;
}

export const BACKUP_CONFIG: InjectionToken<BackupConfig> = Symbol('dp.BackupConfig');

/** The node agents of a multi-server installation (absent: the coordinator backs up every part itself). */
export const PART_AGENTS: InjectionToken<PartAgents> = Symbol('dp.PartAgents');

/**
 * The coordinator's own backup process (server/agent/local.ts): the parts of the servers without an agent of their
 * own run there, at low priority, instead of in the process that answers the API. Absent: they run in-process.
 */
export const OWN_PARTS: InjectionToken<PartAgents> = Symbol('dp.OwnParts');
