// The domain's vocabulary. The HTTP contract (openapi/dataprotect.yaml) mirrors these shapes; the compiler checks
// that the binders in server/http can hand them over unchanged.

import type { ContainerType, EntityKind, ItemSummary } from '../host/port.js';

export type GenerationStatus = 'VALID' | 'UNKNOWN' | 'INVALID';
export type RunStatus = 'OK' | 'WARNING' | 'ERROR' | 'POSTOPS_ERROR';

export interface Part {
  id: string;
  server: string;
  serverAddress?: string | null;
  tag: string;
  status: GenerationStatus;
  begin: string;
  end: string | null;
  /** Bytes read from the source. */
  sizeRead: number;
  /** Bytes added to the repository. */
  sizeAdded: number;
  /** The part's full size: what it protects (null when the part has no snapshot). */
  sizeTotal?: number | null;
  messages: string[];
}

/** What started a run: the schedule, someone (console or API), the command line, or a recovery point. */
export type Trigger = 'api' | 'schedule' | 'cli' | 'recovery-point';

export interface Generation {
  id: string;
  protectionTime: string;
  status: GenerationStatus;
  runStatus?: RunStatus | null;
  productVersion: string;
  formatVersion: number;
  /** Kept whatever the retention policy. */
  protected: boolean;
  sizeRead: number;
  sizeAdded: number;
  /** The full size of every part: what the generation protects. */
  sizeTotal: number;
  trigger: Trigger;
  /** When the run ended (null while running or when interrupted). */
  end: string | null;
  /** From its start to its end. */
  durationSeconds: number | null;
  parts: Part[];
}

/** What a single restore applies to, in BlueMind's DataProtect vocabulary (`OU`, not the directory's `ORG_UNIT`). */
export const RESTORABLE_KINDS = ['DOMAIN', 'USER', 'MAILSHARE', 'OU', 'ADDRESSBOOK', 'CALENDAR', 'RESOURCE'] as const;
export type RestorableKind = (typeof RESTORABLE_KINDS)[number];

/**
 * The one translation from the host directory's kinds to restorable kinds. Groups are not restored on their own;
 * a domain's calendars and address books become entries from the domain's containers, not from directory rows.
 */
const FROM_DIRECTORY: Record<EntityKind, RestorableKind | null> = {
  DOMAIN: 'DOMAIN',
  USER: 'USER',
  MAILSHARE: 'MAILSHARE',
  RESOURCE: 'RESOURCE',
  ORG_UNIT: 'OU',
  GROUP: null,
  ADDRESSBOOK: null,
  CALENDAR: null,
};

export function restorableKindOf(kind: EntityKind): RestorableKind | null {
  return FROM_DIRECTORY[kind];
}

export interface Restorable {
  kind: RestorableKind;
  uid: string;
  domainUid: string;
  displayName: string;
  email?: string | null;
  orgUnitPath?: string[];
  deleted: boolean;
}

export interface Page<T> {
  total: number;
  offset: number;
  items: T[];
}

export interface MailFolder {
  path: string;
  messages: number;
  size: number;
  /** The mailbox's archived mail (path ARCHIVE_FOLDER), not an IMAP folder. */
  archived?: boolean;
}

export interface MailMessage {
  id: string;
  subject: string;
  from: string;
  date: string;
  size: number;
  flags: string[];
}

/** A calendar, address book, task list, notes or web-app data container of an entity, as a generation saved it. */
export interface SavedContainer {
  uid: string;
  type: ContainerType;
  name: string;
  /** Items as saved. */
  items: number;
  /** Still in the live installation. */
  exists: boolean;
}

/** One item of a saved container, with whether the live container still has it. */
export interface SavedItem extends ItemSummary {
  exists: boolean;
}

export interface EntityRef {
  kind: RestorableKind;
  uid: string;
  domainUid: string;
}

export type PrerequisiteStatus = 'met' | 'not-met' | 'warning';

export interface ServerRef {
  uid: string;
  /** Null for generations that did not record it. */
  address: string | null;
}

/** What a global restore would meet here: each prerequisite, the installation, where each server goes. */
export interface PrerequisiteReport {
  /** No prerequisite is not-met. */
  ok: boolean;
  /** The generation checked (`latest` resolved). */
  generationId: string;
  /** `ok` is true for met and warning (what older clients read). */
  checks: { id: string; ok: boolean; status: PrerequisiteStatus; message: string; advice: string | null }[];
  installation: {
    /** Its databases and data directories are empty or absent; null when not looked at. */
    blank: boolean | null;
    content: string[];
    productVersion: string;
  };
  servers: { from: ServerRef; to: ServerRef | null; explicit: boolean; problem: string | null }[];
  targetServers: ServerRef[];
}

/** A global restore's choices beyond the generation: where servers go, and whether to wipe what is there. */
export interface GlobalRestoreOptions {
  /** A generation server (uid or address) → a server of this installation (uid or address). */
  serverMap?: { from: string; to: string }[];
  /** Remove the installation's data first (its databases and data directories). */
  wipe?: boolean;
}
