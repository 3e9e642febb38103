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
  /** Kept whatever the retention policy. */
  protected: boolean;
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

export interface PrerequisiteReport {
  ok: boolean;
  checks: { id: string; ok: boolean; message: string }[];
}
