// The restore operations: which family runs each operation identifier, and the checks made before a task starts.
// Each family reads only the entity's part of the generation (its mailbox subtree, its container exports) and
// writes only into the entity's own data through the host's writers.

import { InvalidInputError } from '../../errors.js';
import { CONTAINER_OPERATIONS, ITEM_OPERATIONS, RESTORE_OPERATIONS, type RestoreOperationId } from '../../restore-capabilities.js';
import { partSnapshot } from '../generation-parts.js';
import { chosenContainer, replaceContainers, restoreChosen, sendExports } from './containers.js';
import { MAIL_TAG, type OperationRunner, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';
import { completeUser, replaceOrgUnit } from './directory.js';
import { restoreFileHosting } from './file-hosting.js';
import { restoreIntoAccount } from './into-account.js';
import { appendMail, replaceMailbox, savedMailbox } from './mail.js';
import { agentFor, runOnAgent } from './on-agent.js';
import { generationsInPeriod, undeleteMail } from './undelete.js';

export { FILEHOSTING_TAG, MAIL_TAG, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';
export { restoredFolderName } from './mail.js';
export { restoredIntoFolderName } from './into-account.js';
export { AGENT_OPERATIONS, plannedOnAgent } from './on-agent.js';
export { sendRecipient } from './containers.js';

const RUNNERS: Record<RestoreOperationId, OperationRunner> = {
  'subfolder.mailbox': (env, p, ctx) => appendMail(env, p, ctx, 'subfolder'),
  'restore.mail.folder': (env, p, ctx) => appendMail(env, p, ctx, 'folder'),
  'restore.mail.messages': (env, p, ctx) => appendMail(env, p, ctx, 'messages'),
  'replace.mailbox': replaceMailbox,
  'replace.calendars': (env, p, ctx) => replaceContainers(env, p, ctx, 'calendar'),
  'replace.resources': (env, p, ctx) => replaceContainers(env, p, ctx, 'calendar'),
  'replace.domain.calendars': (env, p, ctx) => replaceContainers(env, p, ctx, 'calendar'),
  'replace.books': (env, p, ctx) => replaceContainers(env, p, ctx, 'addressbook'),
  'replace.domain.books': (env, p, ctx) => replaceContainers(env, p, ctx, 'addressbook'),
  'replace.todolists': (env, p, ctx) => replaceContainers(env, p, ctx, 'todolist'),
  'replace.notes': (env, p, ctx) => replaceContainers(env, p, ctx, 'notes'),
  'replace.webappdata': (env, p, ctx) => replaceContainers(env, p, ctx, 'webappdata'),
  'replace.container': (env, p, ctx) => restoreChosen(env, p, ctx, 'replace', 'container'),
  'addmissing.container': (env, p, ctx) => restoreChosen(env, p, ctx, 'missing', 'container'),
  'replace.items': (env, p, ctx) => restoreChosen(env, p, ctx, 'replace', 'items'),
  'addmissing.items': (env, p, ctx) => restoreChosen(env, p, ctx, 'missing', 'items'),
  'send.calendars.ics': (env, p, ctx) => sendExports(env, p, ctx, 'calendar'),
  'send.domain.calendars.ics': (env, p, ctx) => sendExports(env, p, ctx, 'calendar'),
  'send.resources': (env, p, ctx) => sendExports(env, p, ctx, 'calendar'),
  'send.books.vcf': (env, p, ctx) => sendExports(env, p, ctx, 'addressbook'),
  'send.domain.books.vcf': (env, p, ctx) => sendExports(env, p, ctx, 'addressbook'),
  'send.todolist.ics': (env, p, ctx) => sendExports(env, p, ctx, 'todolist'),
  'replace.ou': replaceOrgUnit,
  'complete.restore.user': completeUser,
  'restore.filehosting': restoreFileHosting,
  'restore.into.account': restoreIntoAccount,
  'undelete.mail': undeleteMail,
};

/** Checks that an operation applies to the entry in this generation; throws InvalidInputError / NotFoundError. */
export async function validate(env: RestoreEnv, p: PlannedRestore): Promise<void> {
  const op = RESTORE_OPERATIONS.find((o) => o.identifier === p.operation);
  if (!op) throw new InvalidInputError('operation', `unknown restore operation ${p.operation}`);
  if (!op.kinds.includes(p.entry.kind)) throw new InvalidInputError('operation', `${p.operation} does not apply to a ${p.entry.kind} entity`);
  if (op.requiredTag && !partSnapshot(p.catalog.generation, op.requiredTag)) {
    throw new InvalidInputError('operation', `generation ${p.catalog.generation.id} has no ${op.requiredTag} part, which ${p.operation} needs`);
  }
  if (op.deletedEntitiesOnly && !p.entry.deleted) {
    throw new InvalidInputError('operation', `${p.operation} restores a deleted user; ${p.entry.displayName} still exists (use the replace.* operations)`);
  }
  if ((p.operation === 'restore.mail.folder' || p.operation === 'restore.mail.messages') && !p.folder) {
    throw new InvalidInputError('folder', `${p.operation} needs the folder`);
  }
  if (p.operation === 'restore.mail.messages' && !p.messageIds?.length) throw new InvalidInputError('messageIds', 'choose at least one message');
  const onContainer = (CONTAINER_OPERATIONS as readonly string[]).includes(p.operation) || (ITEM_OPERATIONS as readonly string[]).includes(p.operation);
  if (onContainer) {
    if (!p.container) throw new InvalidInputError('container', `${p.operation} needs the container (its uid, as listed for the entity in this generation)`);
    chosenContainer(p);
  } else if (p.container || p.itemUids) {
    throw new InvalidInputError('container', `${p.operation} restores no single container; leave out container and itemUids`);
  }
  if ((ITEM_OPERATIONS as readonly string[]).includes(p.operation) && !p.itemUids?.length) {
    throw new InvalidInputError('itemUids', `${p.operation} needs the items to restore (their uids, as listed for the container)`);
  }
  if ((CONTAINER_OPERATIONS as readonly string[]).includes(p.operation) && p.itemUids) {
    throw new InvalidInputError('itemUids', `${p.operation} restores the whole container; use replace.items or addmissing.items for chosen items`);
  }
  if (p.operation.startsWith('send.') && !env.mailer) {
    throw new InvalidInputError('operation', 'no SMTP relay is configured for sending exports');
  }
  const takesTarget = RESTORE_OPERATIONS.filter((o) => o.needsTarget).map((o) => o.identifier).join(', ');
  const takesPeriod = RESTORE_OPERATIONS.filter((o) => o.needsPeriod).map((o) => o.identifier).join(', ');
  if (!op.needsTarget && p.into) throw new InvalidInputError('targetUid', `a target account applies to ${takesTarget} only, not to ${p.operation}`);
  if (!op.needsPeriod && (p.from || p.to)) throw new InvalidInputError('from', `a period applies to ${takesPeriod} only, not to ${p.operation}`);
  if (op.needsTarget) {
    if (!p.into) throw new InvalidInputError('targetUid', `${p.operation} needs the account that receives the data (targetUid)`);
    if (p.into.kind !== 'USER') throw new InvalidInputError('targetUid', `${p.into.displayName} is a ${p.into.kind}: the data goes into a user's account`);
    if (p.into.uid === p.entry.uid) throw new InvalidInputError('targetUid', `${p.into.displayName} is the user being restored: choose another account, or use subfolder.mailbox and the replace.* operations`);
    if (!(await env.host.mailboxLocation(p.into))) throw new InvalidInputError('targetUid', `${p.into.displayName} has no mailbox to receive the mail`);
  }
  if (op.needsPeriod) {
    if (!p.from || !p.to || Number.isNaN(p.from.getTime()) || Number.isNaN(p.to.getTime())) {
      throw new InvalidInputError('from', `${p.operation} needs a period: from and to (dates, e.g. 2026-01-01 and 2026-01-31)`);
    }
    if (p.from > p.to) throw new InvalidInputError('from', `the period starts (${p.from.toISOString()}) after it ends (${p.to.toISOString()}): swap from and to`);
    if (p.entry.deleted) throw new InvalidInputError('operation', `${p.entry.displayName} no longer exists: restore the user first (complete.restore.user)`);
    if ((await generationsInPeriod(env, p)).length === 0) {
      throw new InvalidInputError('from', `no generation with mail was taken between ${p.from.toISOString()} and ${p.to.toISOString()}: widen the period`);
    }
  }
  if (op.requiredTag === MAIL_TAG) {
    const mailbox = await savedMailbox(env, p);
    if (p.folder) await mailbox.box.folder(p.folder);
  }
}

/** Runs one planned restore; the result goes into the task's result and the audit record. */
export async function runRestore(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  ctx.info(`${p.operation} of ${p.entry.kind} ${p.entry.displayName} (${p.entry.uid}) from generation ${p.catalog.generation.id}`);
  const run = RUNNERS[p.operation];
  if (!run) throw new InvalidInputError('operation', `unknown restore operation ${p.operation}`);
  const agent = await agentFor(env, p);
  if (agent) return runOnAgent(env, p, ctx, agent);
  return run(env, p, ctx);
}

/** What an agent runs for the coordinator: the operation alone, on this server (no further delegation). */
export async function runRestoreHere(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const run = RUNNERS[p.operation];
  if (!run) throw new InvalidInputError('operation', `unknown restore operation ${p.operation}`);
  return run({ ...env, agents: undefined }, p, ctx);
}
