// The host port: the one interface through which the product sees a BlueMind installation.
// An adapter for a real BlueMind implements it later; the reference host (./reference) implements it
// on this machine with BlueMind's own schema. Nothing outside server/host knows a host's tables or mail server.

import type { Readable } from 'node:stream';
import type { ConnectionSettings } from '../pg/settings.js';

/** A part's tag, as BlueMind names them (TagDescriptor). */
export type Tag =
  | 'bm/pgsql'
  | 'bm/pgsql-data'
  | 'bm/core'
  | 'mail/imap'
  | 'mail/archive'
  | 'filehosting/data'
  | 'bm/conf'
  | (string & {});

/** One server of the installation. Parts are (server, tag). */
export interface HostServer {
  /** Stable server uid (BlueMind: `bm-master` for the core). */
  uid: string;
  /** IP address (BlueMind's part paths use it). */
  address: string;
  tags: Tag[];
}

/** A database of the installation: which part it belongs to and how to reach it. */
export interface HostDatabase {
  /** Server uid holding it. */
  server: string;
  tag: Tag;
  connection: ConnectionSettings;
}

/** A directory tree that makes up (part of) a file part. */
export interface DataLocation {
  server: string;
  tag: Tag;
  /** Path inside the part's snapshot, e.g. `/spool`. */
  virtualPath: string;
  /** Where it lives on this host's filesystem. */
  fsPath: string;
}

export type EntityKind = 'DOMAIN' | 'USER' | 'MAILSHARE' | 'RESOURCE' | 'GROUP' | 'ORG_UNIT' | 'ADDRESSBOOK' | 'CALENDAR';

/** An entity of the directory, as the restore browser shows it. */
export interface DirectoryEntity {
  uid: string;
  domainUid: string;
  kind: EntityKind;
  /** Login or share name (the local part for mailboxes). */
  name: string;
  displayName: string;
  email: string | null;
  /** Organisational unit path from the root, e.g. `['Sales', 'EMEA']`; empty when none. */
  ouPath: string[];
  archived: boolean;
  /** Present in a generation but no longer in the live directory (set by callers comparing the two). */
  deleted: boolean;
}

export interface HostDomain {
  uid: string;
  name: string;
  label: string;
  aliases: string[];
  global: boolean;
}

export interface DirectoryQuery {
  kinds?: EntityKind[];
  /** Case-insensitive substring of name, display name or email. */
  search?: string;
}

export interface HostDirectory {
  domains(): Promise<HostDomain[]>;
  entities(domainUid: string, query?: DirectoryQuery): Promise<DirectoryEntity[]>;
  entity(domainUid: string, uid: string): Promise<DirectoryEntity | null>;
}

/** Where a mailbox's mail lives. */
export interface MailboxLocation {
  server: string;
  /** Maildir root of the mailbox on the mail server's filesystem. */
  maildir: string;
  /** Same, relative to the `mail/imap` data location (the path inside the part). */
  partPath: string;
  /** Login to use over IMAP (through the host's administrative access). */
  imapLogin: string;
  /** The mailbox's archived mail, in the `mail/archive` part of the same server (null: the host archives none). */
  archive: { dir: string; partPath: string } | null;
}

/** The kinds of container per-entity exports cover: calendars, address books, task lists, notes, web-app data. */
export const CONTAINER_TYPES = ['calendar', 'addressbook', 'todolist', 'notes', 'webappdata'] as const;
export type ContainerType = (typeof CONTAINER_TYPES)[number];
/** Those with an ICS or VCF form (EntityRenderer.render). */
export const RENDERED_TYPES: readonly ContainerType[] = ['calendar', 'addressbook', 'todolist'];

/** One item of a saved container as the restore browser lists it (read from the container's export). */
export interface ItemSummary {
  uid: string;
  /** Event or task summary, contact name, note subject, web-app data key. */
  summary: string;
  /**
   * Event start, task due date (else start), else the item's last change, as saved: `YYYY-MM-DDTHH:MM:SS` in
   * `timeZone` (UTC when null), or `YYYY-MM-DD` for a whole day; null when the item has none.
   */
  date: string | null;
  timeZone: string | null;
}

/** A container owned by an entity, as seen inside one database snapshot. */
export interface EntityContainer {
  uid: string;
  type: ContainerType;
  name: string;
  owner: string;
  domainUid: string;
  itemCount: number;
}

/**
 * A read-only SQL session inside one database snapshot (the per-entity exports run in the transaction
 * that exported the snapshot pg_dump uses). Sources pass it to the host; only the host knows the tables.
 */
export interface SnapshotQuery {
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Streams rows of a query (large containers). */
  stream(sql: string, params?: unknown[]): AsyncIterable<Record<string, unknown>>;
}

/** Reads an entity's containers from a snapshot, as lossless row streams (JSON lines). */
export interface EntityDataReader {
  /** Every entity that owns containers, per domain, including the domain itself (domain address book). */
  owners(q: SnapshotQuery): Promise<DirectoryEntity[]>;
  containers(q: SnapshotQuery, owner: DirectoryEntity): Promise<EntityContainer[]>;
  /**
   * One container as JSON lines: a first `{"container": …}` line, then one line per item with the host's rows
   * (`{"item": <t_container_item row>, "<type>": <row>}`), in a stable order.
   */
  exportContainer(q: SnapshotQuery, container: EntityContainer): AsyncIterable<string>;
  /**
   * Optional bulk form: every container of every owner with its export lines (as exportContainer gives them),
   * in a few queries instead of a few per container.
   */
  exportAll?(q: SnapshotQuery): AsyncIterable<{ container: EntityContainer; lines: string[] }>;
  /** The uids of a container's items (empty when the container does not exist): what still exists, live. */
  itemUids(q: SnapshotQuery, containerUid: string): Promise<string[]>;
  /**
   * What restoring a deleted user needs of the directory (its entry, account, mailbox rows, group and unit
   * memberships…), one JSON text per user in the host's own shape, by domain then uid; `only` reads one user
   * (whatever its kind). The backup saves them beside the exports, so that complete.restore.user reads one user's
   * record and not the whole database; DirectoryWriter.restoreUser writes one back.
   */
  userRecords(q: SnapshotQuery, only?: { domainUid: string; uid: string }): AsyncIterable<SavedUserRecord>;
  /** Optional: exports derived from the dump's own rows, so that the backup stores no second copy of them. */
  rowExport?: RowExport;
}

/** How the exports of a host are derived from the rows of its database dump (tables named `schema.table`). */
export interface RowExport {
  /**
   * Inside the snapshot: the exported containers with their database ids, how each table's rows belong to a
   * container (the column holding the container id, or `byItem`: the column holding an item id, whose container
   * `itemContainer` gives). Null when the installation is too large to hold that map in memory: the exports are
   * then stored as files.
   */
  layout(q: SnapshotQuery): Promise<null | {
    containers: { container: EntityContainer; id: string }[];
    tables: Record<string, { column: string; byItem?: boolean }>;
    itemContainer: Map<string, string>;
  }>;
  /**
   * One container's export lines, as exportContainer gives them, from its rows: per layout table, its columns and
   * the container's rows, each value as JSON text (as PostgreSQL renders it in JSON).
   */
  lines(type: ContainerType, tables: Record<string, { columns: string[]; rows: string[][] }>): string[];
}

/** One user's directory rows as a generation saved them (EntityDataReader.userRecords). */
export interface SavedUserRecord {
  domainUid: string;
  uid: string;
  /** JSON text, read only by the host that wrote it. */
  record: string;
}

/**
 * Renders an export stream (as produced by EntityDataReader.exportContainer) to ICS or VCF. Here and in
 * DatabaseWriter, each string of the iterable holds one or more complete JSON lines.
 */
export interface EntityRenderer {
  /** Calendars and task lists as ICS, address books as VCF (notes and web-app data have no such format). */
  render(type: ContainerType, lines: AsyncIterable<string>): Promise<string>;
  /** The items of an export, each with a summary and a date, in the export's order. */
  summarize(type: ContainerType, lines: AsyncIterable<string>): Promise<ItemSummary[]>;
}

/** Puts mail files back into a mailbox's spool. */
export interface MailWriter {
  /** Writes one message file under `folder` of the mailbox (Maildir name kept so flags survive). */
  writeMessage(loc: MailboxLocation, folder: string, fileName: string, content: Readable | Buffer): Promise<void>;
  /**
   * Puts one archived message back into the mailbox's archive (`relPath` as saved, inside the archive directory).
   * Returns false, writing nothing, when the archive already holds that file.
   */
  writeArchived(loc: MailboxLocation, relPath: string, content: Buffer, mtime: Date): Promise<boolean>;
}

/** A message of a live mailbox, as an undelete compares it with saved ones. */
export interface LiveMessage {
  folder: string;
  messageId: string | null;
  size: number;
  internalDate: Date;
}

/** Appends mail through IMAP (restores into a live mailbox). */
export interface ImapWriter {
  ensureFolder(loc: MailboxLocation, folder: string): Promise<void>;
  append(loc: MailboxLocation, folder: string, content: Buffer, flags: string[], internalDate: Date): Promise<void>;
  /** The Message-IDs in a folder (a restore skips what is already there). */
  messageIds(loc: MailboxLocation, folder: string): Promise<string[]>;
  /** Every message of the mailbox, all folders (undelete restores what is no longer anywhere). */
  inventory(loc: MailboxLocation): Promise<LiveMessage[]>;
  close(): Promise<void>;
}

/**
 * How a container's export is put back: `replace` makes the saved items exactly as saved (the whole container, its
 * sharing included, when no `items` are given); `missing` only adds the saved items the live container lacks.
 * `items` limits either to those item uids.
 */
export interface ContainerRestoreOptions {
  mode: 'replace' | 'missing';
  items?: readonly string[];
  /** Into a copy of the container instead (restore into another account). */
  as?: ContainerCopy;
}

/** Writes database rows back (restore of calendars, address books, todolists, notes, web-app data). */
export interface DatabaseWriter {
  /**
   * Replaces the container's items with those of an export stream; creates the container if missing. With `as`,
   * the items go into the container `as.uid` instead (created, or replaced when a previous run made it), owned by
   * `as.owner` and readable and writable by them alone: a copy for another account.
   */
  replaceContainer(lines: AsyncIterable<string>, as?: ContainerCopy): Promise<{ items: number }>;
  /**
   * Restores items of an export into the live container (created, with its sharing, when missing): `items` is the
   * number written, `skipped` the saved items left as they are live (`missing` mode), `absent` the uids asked for
   * that the export does not hold.
   */
  restoreContainer(lines: AsyncIterable<string>, options: ContainerRestoreOptions): Promise<{ items: number; skipped: number; absent: string[] }>;
}

/** A new home for a container's items (restore into another account). */
export interface ContainerCopy {
  uid: string;
  name: string;
  /** The directory entity that owns the copy. */
  owner: string;
  domainUid: string;
}

/**
 * Replaces a whole tree of the host's data with one a restore fills: the host gives a staging directory
 * on the same filesystem, `fill` writes the tree under it and returns the directory that becomes the live one.
 */
export interface TreeReplacer {
  /** The mailbox's files become the filled tree, then the mail server resynchronises its index (replace.mailbox). */
  replaceMailbox(loc: MailboxLocation, fill: (stagingRoot: string) => Promise<string>): Promise<void>;
  /** The mailbox's archived mail becomes the filled tree (replace.mailbox of a generation holding `mail/archive`). */
  replaceArchive(loc: MailboxLocation, fill: (stagingRoot: string) => Promise<string>): Promise<void>;
  /** A domain's file-hosting data (restore.filehosting). */
  replaceFileHosting(domainUid: string, fill: (stagingRoot: string) => Promise<string>): Promise<void>;
}

/** Writes directory entries back (complete.restore.user, replace.ou). */
export interface DirectoryWriter {
  /**
   * Recreates (or overwrites) a user's directory rows from its saved record (EntityDataReader.userRecords); group
   * memberships are restored for the groups that still exist.
   */
  restoreUser(record: string, domainUid: string, uid: string): Promise<{ groups: number; groupsGone: number }>;
  /** Renames an organisational unit back, or recreates it (and missing parents, by name) when it is gone. */
  restoreOrgUnit(domainUid: string, uid: string, ouPath: string[]): Promise<'renamed' | 'recreated' | 'unchanged'>;
}

/** The whole port. */
export interface HostPort {
  /** Servers of the installation with their tags. */
  servers(): Promise<HostServer[]>;
  databases(): Promise<HostDatabase[]>;
  /** File parts' directories on a server for a tag (empty when that server has nothing for the tag). */
  dataLocations(server: string, tag: Tag): Promise<DataLocation[]>;
  directory: HostDirectory;
  mailboxLocation(entity: DirectoryEntity): Promise<MailboxLocation | null>;
  entityData: EntityDataReader;
  renderer: EntityRenderer;
  writers: {
    mail: MailWriter;
    imap(): Promise<ImapWriter>;
    database: DatabaseWriter;
    trees: TreeReplacer;
    directory: DirectoryWriter;
  };
}
