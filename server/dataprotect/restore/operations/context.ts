// What every restore operation is given: the repository and the host (the environment), the planned restore, and
// a context to report to (a task's, or the CLI's).

import type { Repository } from '../../../engine/index.js';
import type { PartAgents } from '../../generation/part-agents.js';
import type { DirectoryEntity, HostPort } from '../../../host/port.js';
import type { RestoreOperationId } from '../../restore-capabilities.js';
import type { Catalog, CatalogEntry } from '../catalog.js';
import type { Mailer } from '../mailer.js';
import type { Phrase } from '../../../store/task-record.js';

export const MAIL_TAG = 'mail/imap';
export const ARCHIVE_TAG = 'mail/archive';
export const FILEHOSTING_TAG = 'filehosting/data';

/** What an operation reports to and hears from (a task's context satisfies it). */
export interface RestoreContext {
  readonly signal: AbortSignal;
  progress(p: { done?: number; total?: number | null; unit?: string | null; bytes?: number | null; message?: string | null }): void;
  /** `phrase`: the line as a message key of the console and its parameters, for the console to translate. */
  info(message: string, phrase?: Phrase): void;
  warn(message: string, phrase?: Phrase): void;
  attach(name: string, content: Buffer | string, contentType: string): Promise<unknown>;
}

export interface RestoreEnv {
  repo: Repository;
  host: HostPort;
  /** The SMTP relay send.* operations use; null when none is configured. */
  mailer: Mailer | null;
  /**
   * The node agents of a multi-server installation: a restore that writes a server's disks runs on that server's
   * agent (none: here).
   */
  agents?: PartAgents;
  /** The repository's location as the agents reach it (default: the repository's own). */
  repositoryLocation?: string;
}

export interface PlannedRestore {
  operation: RestoreOperationId;
  entry: CatalogEntry;
  catalog: Catalog;
  folder?: string;
  messageIds?: string[];
  /** For the operations on one container: its uid in the generation. */
  container?: string;
  /** For the operations on chosen items of that container: their uids. */
  itemUids?: string[];
  recipient?: string;
  /** restore.into.account: the live account that receives the entity's data. */
  into?: DirectoryEntity;
  /** undelete.mail: the generations taken in [from, to] are read. */
  from?: Date;
  to?: Date;
  /** Who asked (login and email), for send.* recipients and the logs. */
  actor: { login: string; email: string | null };
}

/** One operation family's entry point: the task body's work, with its result for the task and the audit. */
export type OperationRunner = (env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext) => Promise<Record<string, unknown>>;

export function checkCancel(ctx: RestoreContext): void {
  if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('cancelled');
}
