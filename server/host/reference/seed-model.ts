// What the seeder builds before it writes anything: BlueMind's rows, table by table, with the ids, sequences and
// counts they imply, and the mailboxes whose files come next. Also the seed's clock (every date is relative to
// BASE_TIME, so the same seed gives the same rows whenever it runs).

export type Row = Record<string, unknown>;

export const BASE_TIME = Date.UTC(2026, 0, 5, 8, 0, 0); // a Monday
export const DAY = 86_400_000;
export const TZ = 'Europe/Paris';

/** `timestamp without time zone` text. */
export function ts(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** Lowercase ASCII slug (logins, OU uids, e-mail domains of contacts). */
export function ascii(s: string): string {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

export interface Mailbox {
  uid: string;
  domain: string;
  name: string;
  email: string;
  displayName: string;
  kind: 'user' | 'mailshare';
}

export interface Person {
  uid: string;
  itemId: number;
  login: string;
  email: string;
  displayName: string;
  first: string;
  last: string;
}

export class SeedModel {
  readonly t: Record<string, Row[]> = {};
  private nextContainer = 1;
  private nextItem = 1;
  private readonly seqs = new Map<number, Row>();
  readonly containerUid = new Map<number, string>();
  readonly mailboxes: Mailbox[] = [];
  counts = { events: 0, contacts: 0, todos: 0, notes: 0, webAppData: 0, users: 0, mailshares: 0, resources: 0, groups: 0, orgUnits: 0 };

  rows(table: string): Row[] {
    return (this.t[table] ??= []);
  }

  container(uid: string, type: string, name: string, owner: string, domainUid: string | null, created: number, def = false): number {
    const id = this.nextContainer++;
    this.rows('t_container').push({
      id, uid, container_type: type, name, owner, createdby: owner, updatedby: owner,
      created: ts(created), updated: ts(created), defaultcontainer: def, domain_uid: domainUid, readonly: false,
    });
    const seq = { container_id: id, seq: 0 };
    this.rows('t_container_sequence').push(seq);
    this.seqs.set(id, seq);
    this.containerUid.set(id, uid);
    return id;
  }

  item(containerId: number, uid: string, displayname: string, created: number, by: string, version = 1): number {
    const id = this.nextItem++;
    this.rows('t_container_item').push({
      id, container_id: containerId, uid, version, external_id: null, displayname, createdby: by, updatedby: by,
      created: ts(created), updated: ts(created + version * 3_600_000), flags: 0,
    });
    const seq = this.seqs.get(containerId)!;
    seq.seq = Number(seq.seq) + version;
    return id;
  }

  acl(containerId: number, subject: string, verb: string, position = 0): void {
    this.rows('t_container_acl').push({ container_id: containerId, subject, verb, position });
  }

  get containerCount(): number {
    return this.nextContainer - 1;
  }
  get itemCount(): number {
    return this.nextItem - 1;
  }
}
