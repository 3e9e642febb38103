import type { Phrase } from '../store/task-record.js';
import type { RestoreOperationId } from './restore-capabilities.js';

// What a task is called, in words (not an operation identifier): the English title the log, the CLI and the audit
// read, and the message key with its parameters the console says in its language (ui-components/src/i18n.ts,
// `task.title.*`). One template per title, so that the two never drift apart.

export const TASK_TITLES = {
  backup: 'Backup of the installation',
  scheduledBackup: 'Scheduled backup of the installation',
  recoveryPoint: 'Mail recovery point',
  retention: 'Retention policy applied to the generations',
  forget: 'Deletion of the generation {generation}',
  sync: 'Generations read again from the repository',
  content: 'Content of the generation {generation} listed',
  globalRestore: 'Global restore of the generation {generation}',
  globalRestoreWipe: 'Global restore of the generation {generation} (the installation wiped first)',
  rehearsal: 'Restore rehearsal of the generation {generation}',
  copy: 'Off-site copy of the generation {generation}',
  'check.structure': 'Check of the repository (structure)',
  'check.sample': 'Check of the repository ({percent}% of the data read)',
  'check.full': 'Check of the repository (all data read)',
  'restore.replace.mailbox': 'Mailbox of {name} replaced by its saved state',
  'restore.subfolder.mailbox': 'Mailbox of {name} restored into a folder',
  'restore.restore.mail.folder': 'Folder {folder} of {name} restored',
  'restore.restore.mail.messages': 'Messages of {name} restored into {folder}',
  'restore.replace.calendars': 'Calendars of {name} replaced by their saved state',
  'restore.replace.books': 'Address books of {name} replaced by their saved state',
  'restore.replace.todolists': 'Task lists of {name} replaced by their saved state',
  'restore.replace.notes': 'Notes of {name} replaced by their saved state',
  'restore.replace.webappdata': 'Web application data of {name} replaced by its saved state',
  'restore.replace.container': '{container} of {name} replaced by its saved state',
  'restore.addmissing.container': 'Missing items of {container} of {name} restored',
  'restore.replace.items': 'Chosen items of {container} of {name} replaced by their saved state',
  'restore.addmissing.items': 'Chosen items of {container} of {name} restored where missing',
  'restore.replace.domain.calendars': 'Calendar {name} replaced by its saved state',
  'restore.replace.domain.books': 'Address book {name} replaced by its saved state',
  'restore.replace.resources': 'Bookings of the resource {name} replaced by their saved state',
  'restore.replace.ou': 'Organisational unit {name} restored',
  'restore.send.calendars.ics': 'Calendars of {name} sent as ICS',
  'restore.send.books.vcf': 'Address books of {name} sent as VCF',
  'restore.send.todolist.ics': 'Task lists of {name} sent as ICS',
  'restore.send.domain.calendars.ics': 'Calendar {name} sent as ICS',
  'restore.send.domain.books.vcf': 'Address book {name} sent as VCF',
  'restore.send.resources': 'Bookings of the resource {name} sent as ICS',
  'restore.complete.restore.user': 'Deleted user {name} restored',
  'restore.restore.filehosting': 'File hosting data of {name} restored',
  'restore.restore.into.account': 'Mail, calendars and contacts of {name} restored into the account {target}',
  'restore.undelete.mail': 'Messages of {name} deleted between {from} and {to} restored',
} as const satisfies Record<string, string> & Record<`restore.${RestoreOperationId}`, string>;

export type TitleId = keyof typeof TASK_TITLES;

/** The English title and its phrase, as TaskSpec takes them. */
export function taskTitle(id: TitleId, params: Record<string, string | number> = {}): { title: string; titlePhrase: Phrase } {
  const title = TASK_TITLES[id].replace(/\{(\w+)\}/g, (_, n: string) => String(params[n] ?? ''));
  return { title, titlePhrase: { key: `task.title.${id}`, params } };
}

/**
 * The title of a restore operation on an entity (and a folder, for the mail restores that take one; the container's
 * name, for those on one container).
 */
export function restoreTitle(
  operation: RestoreOperationId, name: string, what: { folder?: string | null; container?: string | null } = {}, extra: Record<string, string> = {},
): { title: string; titlePhrase: Phrase } {
  return taskTitle(`restore.${operation}`, { name, ...(what.folder ? { folder: what.folder } : {}), ...(what.container ? { container: what.container } : {}), ...extra });
}
