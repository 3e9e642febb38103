import type { RestorableKind } from './model.js';

// BlueMind's restore operation identifiers (bluemind-dataprotect.md §2), kept as they are so that scripts and
// habits carry over, plus the finer restores BlueMind lacks: a mail folder or chosen messages, one calendar, address
// book or task list (`*.container`), chosen events, contacts or tasks (`*.items`), each replacing or adding what is
// missing (`addmissing.*`). Which of them an installation actually offers is the RestoreService's answer, not this
// list's.

export type RestoreOperationId =
  | 'replace.mailbox'
  | 'subfolder.mailbox'
  | 'restore.mail.folder'
  | 'restore.mail.messages'
  | 'replace.calendars'
  | 'replace.books'
  | 'replace.todolists'
  | 'replace.notes'
  | 'replace.webappdata'
  | 'replace.container'
  | 'addmissing.container'
  | 'replace.items'
  | 'addmissing.items'
  | 'replace.domain.calendars'
  | 'replace.domain.books'
  | 'replace.resources'
  | 'replace.ou'
  | 'send.calendars.ics'
  | 'send.books.vcf'
  | 'send.todolist.ics'
  | 'send.domain.calendars.ics'
  | 'send.domain.books.vcf'
  | 'send.resources'
  | 'complete.restore.user'
  | 'restore.filehosting'
  | 'restore.into.account'
  | 'undelete.mail';

export interface RestoreOperation {
  identifier: RestoreOperationId;
  kinds: RestorableKind[];
  /** The part a generation must hold for the operation (null: the database part, always present). */
  requiredTag: string | null;
  /** Offered only when the entity no longer exists (complete.restore.user). */
  deletedEntitiesOnly?: boolean;
  /** Takes a target account (`targetUid`): another live user receives the data. */
  needsTarget?: boolean;
  /** Takes a period (`from`, `to`): every generation taken in it is read. */
  needsPeriod?: boolean;
}

const MAILBOXES: RestorableKind[] = ['USER', 'MAILSHARE'];
/** The entities that own calendars, address books or task lists. */
const CONTAINER_OWNERS: RestorableKind[] = ['USER', 'CALENDAR', 'ADDRESSBOOK', 'RESOURCE'];

/** The operations on one container of an entity, or on chosen items of it (the request names them). */
export const CONTAINER_OPERATIONS = ['replace.container', 'addmissing.container'] as const satisfies readonly RestoreOperationId[];
export const ITEM_OPERATIONS = ['replace.items', 'addmissing.items'] as const satisfies readonly RestoreOperationId[];

export const RESTORE_OPERATIONS: readonly RestoreOperation[] = [
  { identifier: 'replace.mailbox', kinds: MAILBOXES, requiredTag: 'mail/imap' },
  // BlueMind 5 forgets this tag (a copy-paste bug); without the mail part there is nothing to restore.
  { identifier: 'subfolder.mailbox', kinds: MAILBOXES, requiredTag: 'mail/imap' },
  { identifier: 'restore.mail.folder', kinds: MAILBOXES, requiredTag: 'mail/imap' },
  { identifier: 'restore.mail.messages', kinds: MAILBOXES, requiredTag: 'mail/imap' },
  { identifier: 'replace.calendars', kinds: ['USER'], requiredTag: null },
  { identifier: 'replace.books', kinds: ['USER'], requiredTag: null },
  { identifier: 'replace.todolists', kinds: ['USER'], requiredTag: null },
  { identifier: 'replace.notes', kinds: ['USER'], requiredTag: null },
  { identifier: 'replace.webappdata', kinds: ['USER'], requiredTag: null },
  { identifier: 'replace.container', kinds: CONTAINER_OWNERS, requiredTag: null },
  { identifier: 'addmissing.container', kinds: CONTAINER_OWNERS, requiredTag: null },
  { identifier: 'replace.items', kinds: CONTAINER_OWNERS, requiredTag: null },
  { identifier: 'addmissing.items', kinds: CONTAINER_OWNERS, requiredTag: null },
  { identifier: 'replace.domain.calendars', kinds: ['CALENDAR'], requiredTag: null },
  { identifier: 'replace.domain.books', kinds: ['ADDRESSBOOK'], requiredTag: null },
  { identifier: 'replace.resources', kinds: ['RESOURCE'], requiredTag: null },
  { identifier: 'replace.ou', kinds: ['OU'], requiredTag: null },
  { identifier: 'send.calendars.ics', kinds: ['USER'], requiredTag: null },
  { identifier: 'send.books.vcf', kinds: ['USER'], requiredTag: null },
  { identifier: 'send.todolist.ics', kinds: ['USER'], requiredTag: null },
  { identifier: 'send.domain.calendars.ics', kinds: ['CALENDAR'], requiredTag: null },
  { identifier: 'send.domain.books.vcf', kinds: ['ADDRESSBOOK'], requiredTag: null },
  { identifier: 'send.resources', kinds: ['RESOURCE'], requiredTag: null },
  { identifier: 'complete.restore.user', kinds: ['USER'], requiredTag: null, deletedEntitiesOnly: true },
  { identifier: 'restore.filehosting', kinds: ['DOMAIN'], requiredTag: 'filehosting/data' },
  // A user's mail, calendars, address books and task lists into another live account (Zextras' "Restore on New Account").
  { identifier: 'restore.into.account', kinds: ['USER'], requiredTag: null, needsTarget: true },
  // Messages of any generation of a period that the live mailbox no longer holds.
  { identifier: 'undelete.mail', kinds: MAILBOXES, requiredTag: 'mail/imap', needsPeriod: true },
];

/** The operations a generation allows, given the tags of its parts. */
export function operationsForTags(ops: readonly RestoreOperation[], tags: readonly string[]): RestoreOperation[] {
  return ops.filter((op) => op.requiredTag === null || tags.includes(op.requiredTag));
}
