// The domain's vocabulary. The HTTP contract (openapi/dataprotect.yaml) mirrors these shapes; the compiler checks
// that the binders in server/http can hand them over unchanged.

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
  messages: string[];
}

export interface Generation {
  id: string;
  protectionTime: string;
  status: GenerationStatus;
  runStatus?: RunStatus | null;
  productVersion: string;
  formatVersion: number;
  sizeRead: number;
  sizeAdded: number;
  parts: Part[];
}

export type RestorableKind = 'DOMAIN' | 'USER' | 'MAILSHARE' | 'OU' | 'ADDRESSBOOK' | 'CALENDAR' | 'RESOURCE';

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
}

export interface MailMessage {
  id: string;
  subject: string;
  from: string;
  date: string;
  size: number;
  flags: string[];
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
