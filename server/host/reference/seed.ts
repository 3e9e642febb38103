// `host seed`: fills the reference host with realistic, deterministic data — two domains, users, mailshares,
// resources, groups, organisational units, calendars (single and recurring events, exceptions), address books
// (contacts and groups), todolists, and mail with attachments in Maildir folders — plus the archive,
// file-hosting and configuration directories. The same seed gives the same data (password hashes aside, which
// are salted with the host's own secret).

import { createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { type ConnectionSettings, describe } from '../../pg/settings.js';
import { connect } from '../../pg/client.js';
import { createDatabase, databaseExists } from '../../pg/databases.js';
import { insertRows } from '../../pg/insert-rows.js';
import { CORE_SERVER, MAIL_SERVER, ROOT_MARKER, type HostLayout, hostLayout } from './layout.js';
import { handSpoolToDovecot } from './dovecot.js';
import { attachmentFor, buildMessage, maildirName, ssha256 } from './mail.js';
import { CITIES, COMPANIES, FIRST_NAMES, LAST_NAMES, Prng } from './prng.js';
import { MARKER_TABLE, SCHEMA_SQL, SCHEMA_VERSION, containerUids } from './schema.js';

export interface SeedOptions {
  connection: ConnectionSettings;
  root: string;
  users: number;
  seed?: number;
  eventsPerUser?: number;
  contactsPerUser?: number;
  todosPerUser?: number;
  messagesPerUser?: number;
  /** Extra description text per event, in bytes (the benchmark uses it to reach a given database size). */
  eventDescriptionBytes?: number;
  /** Write the mail spool, archive, file-hosting and configuration files (default true). */
  files?: boolean;
  /** Re-seed a database that holds tables not created by the reference host. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface SeedSummary {
  database: string;
  root: string;
  installationId: string;
  domains: number;
  users: number;
  mailshares: number;
  resources: number;
  groups: number;
  orgUnits: number;
  containers: number;
  items: number;
  events: number;
  contacts: number;
  todos: number;
  messages: number;
  ms: number;
}

type Row = Record<string, unknown>;

export const BASE_TIME = Date.UTC(2026, 0, 5, 8, 0, 0); // a Monday
const DAY = 86_400_000;
const TZ = 'Europe/Paris';
const BYDAY = ['SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA'];

/** `timestamp without time zone` text. */
export function ts(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function ascii(s: string): string {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

/** Mailbox a message file goes to, with the folders every seeded mailbox has. */
export const FOLDERS = ['INBOX', 'Sent', 'Trash', 'Archive', 'Projects', 'Projects/2026'] as const;

interface Mailbox {
  uid: string;
  domain: string;
  name: string;
  email: string;
  displayName: string;
  kind: 'user' | 'mailshare';
}

class Model {
  readonly t: Record<string, Row[]> = {};
  private nextContainer = 1;
  private nextItem = 1;
  private readonly seqs = new Map<number, Row>();
  readonly containerUid = new Map<number, string>();
  readonly mailboxes: Mailbox[] = [];
  counts = { events: 0, contacts: 0, todos: 0 };

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

interface Person {
  uid: string;
  itemId: number;
  login: string;
  email: string;
  displayName: string;
  first: string;
  last: string;
}

interface DomainSpec {
  uid: string;
  label: string;
  aliases: string[];
}

const DOMAINS: DomainSpec[] = [
  { uid: 'acme.lan', label: 'ACME', aliases: ['acme.example'] },
  { uid: 'globex.lan', label: 'Globex', aliases: [] },
];

const OU_TREE = [['Headquarters'], ['Headquarters', 'Sales'], ['Headquarters', 'Sales', 'EMEA'], ['Headquarters', 'Engineering'], ['Support']];

export async function seedReference(opts: SeedOptions): Promise<SeedSummary> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const seed = opts.seed ?? 42;
  const layout = hostLayout(opts.root);
  if (!Number.isInteger(opts.users) || opts.users < 1) throw new Error('--users must be a positive integer');

  const secret = await hostSecret(layout);
  const rng = new Prng(seed);
  const installationId = `bluemind-${rng.uuid().toLowerCase()}`;
  const m = new Model();
  const perUser = {
    events: opts.eventsPerUser ?? 12,
    contacts: opts.contactsPerUser ?? 10,
    todos: opts.todosPerUser ?? 4,
    messages: opts.messagesPerUser ?? 10,
  };

  const summary: SeedSummary = {
    database: opts.connection.database, root: layout.root, installationId,
    domains: 0, users: 0, mailshares: 0, resources: 0, groups: 0, orgUnits: 0, containers: 0, items: 0,
    events: 0, contacts: 0, todos: 0, messages: 0, ms: 0,
  };

  // Domains container and the system domain.
  const domainsCid = m.container(containerUids.domains(installationId), 'domains', 'domains', 'system', null, BASE_TIME - 400 * DAY);
  const allDomains: DomainSpec[] = [{ uid: 'global.virt', label: 'global.virt', aliases: [] }, ...DOMAINS];
  for (const d of allDomains) {
    const itemId = m.item(domainsCid, d.uid, d.label, BASE_TIME - 400 * DAY, 'system');
    m.rows('t_domain').push({
      item_id: itemId, label: d.label, name: d.uid, description: `${d.label} domain`, global: d.uid === 'global.virt',
      aliases: d.aliases, default_alias: d.aliases[0] ?? d.uid, properties: { 'mail.routing.relay': '' },
    });
  }
  summary.domains = DOMAINS.length;

  // Users are split two thirds / one third between the two domains.
  const firstDomainUsers = Math.ceil((opts.users * 2) / 3);
  for (const [di, d] of DOMAINS.entries()) {
    const count = di === 0 ? firstDomainUsers : opts.users - firstDomainUsers;
    seedDomain(m, rng, d, count, perUser, opts.eventDescriptionBytes ?? 0, secret, summary);
  }
  summary.containers = m.containerCount;
  summary.items = m.itemCount;
  summary.events = m.counts.events;
  summary.contacts = m.counts.contacts;
  summary.todos = m.counts.todos;

  // Database.
  log(`seeding database ${describe(opts.connection)}`);
  if (!(await databaseExists(opts.connection, opts.connection.database))) {
    await createDatabase(opts.connection, opts.connection.database);
  }
  const c = await connect(opts.connection);
  try {
    await resetSchema(c, opts.force ?? false);
    await c.query('BEGIN');
    await c.query(SCHEMA_SQL);
    await insertRows(c, MARKER_TABLE, [
      { schema_version: SCHEMA_VERSION, installation_id: installationId, seed, users: opts.users, seeded_at: ts(BASE_TIME) },
    ]);
    for (const table of Object.keys(m.t)) await insertRows(c, table, m.t[table]);
    await c.query(`SELECT setval('t_container_id_seq', $1)`, [m.containerCount]);
    await c.query(`SELECT setval('t_container_item_id_seq', $1)`, [m.itemCount]);
    await c.query('COMMIT');
    await c.query('ANALYZE');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    await c.end().catch(() => {});
  }
  log(`database: ${summary.containers} containers, ${summary.items} items`);

  if (opts.files ?? true) {
    summary.messages = await writeFiles(layout, new Prng(seed ^ 0x5eed), m.mailboxes, perUser.messages, opts, installationId);
    await writeDovecotUsers(layout, m.mailboxes, secret);
    // A Dovecot already running (as its own user) must be able to manage the new spool.
    await handSpoolToDovecot(layout).catch(() => {}); // no dovecot user: nothing to hand over
    log(`files: ${summary.messages} messages in ${m.mailboxes.length} mailboxes under ${layout.spool}`);
  }
  summary.ms = Date.now() - started;
  return summary;
}

function seedDomain(
  m: Model, rng: Prng, d: DomainSpec, userCount: number,
  perUser: { events: number; contacts: number; todos: number },
  descBytes: number, secret: Buffer, summary: SeedSummary,
): void {
  const created = BASE_TIME - 300 * DAY;
  const dirCid = m.container(containerUids.directory(d.uid), 'dir', d.label, d.uid, d.uid, created);
  const abCid = m.container(containerUids.domainAddressBook(d.uid), 'addressbook', `${d.label} directory`, d.uid, d.uid, created, true);
  m.acl(abCid, d.uid, 'Read');

  // The domain's own directory entry.
  const domItem = m.item(dirCid, d.uid, d.label, created, 'system');
  m.rows('t_directory_entry').push(dirEntry(domItem, 'DOMAIN', d.uid, d.label, null, false, null, { system: true }));

  // Organisational units.
  const ouItems = new Map<string, number>();
  for (const ouPath of OU_TREE) {
    const uid = `ou-${ascii(d.uid)}-${ouPath.map(ascii).join('-')}`;
    const itemId = m.item(dirCid, uid, ouPath[ouPath.length - 1], created, 'system');
    const parent = ouPath.length > 1 ? ouItems.get(ouPath.slice(0, -1).join('/')) ?? null : null;
    ouItems.set(ouPath.join('/'), itemId);
    m.rows('t_directory_ou').push({ item_id: itemId, name: ouPath[ouPath.length - 1], parent_item_id: parent });
    m.rows('t_directory_entry').push(dirEntry(itemId, 'ORG_UNIT', uid, ouPath[ouPath.length - 1], null, false, parent));
    summary.orgUnits++;
  }
  const ouIds = [...ouItems.values()];

  // Users.
  const people: Person[] = [];
  const logins = new Set<string>();
  for (let i = 0; i < userCount; i++) {
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    let login = `${ascii(first)}.${ascii(last)}`;
    if (logins.has(login)) login = `${login}${i}`;
    logins.add(login);
    const uid = rng.uuid();
    const email = `${login}@${d.uid}`;
    const displayName = `${first} ${last}`;
    const archived = i % 25 === 24;
    const userCreated = created + rng.int(0, 200) * DAY;
    const itemId = m.item(dirCid, uid, displayName, userCreated, 'admin0@global.virt');
    people.push({ uid, itemId, login, email, displayName, first, last });
    m.rows('t_directory_entry').push(dirEntry(itemId, 'USER', uid, displayName, email, archived, rng.pick(ouIds), { account: 'FULL' }));
    const pw = createHmac('sha256', secret).update(email).digest('base64url').slice(0, 16);
    m.rows('t_domain_user').push({
      item_id: itemId, login, password: ssha256(pw, createHmac('sha256', secret).update('salt:' + email).digest().subarray(0, 8)),
      password_lastchange: ts(userCreated), password_mustchange: false, password_neverexpires: i % 10 === 0, archived,
      system: false, hidden: false, routing: 'internal', server_id: MAIL_SERVER,
      properties: { lang: i % 2 === 0 ? 'fr' : 'en', tz: TZ }, password_algorithm: 'SSHA256', mailbox_copy_guid: rng.uuid().toLowerCase(),
    });
    m.rows('t_mailbox').push({ item_id: itemId, name: login, type: 'user', archived, routing: 'internal', quota: 1_048_576, datalocation: MAIL_SERVER });
    m.rows('t_mailbox_email').push({ item_id: itemId, left_address: login, right_address: d.uid, all_aliases: true, is_default: true });
    m.mailboxes.push({ uid, domain: d.uid, name: login, email, displayName, kind: 'user' });
    const acls = m.container(containerUids.mailboxAcls(uid), 'mailboxacl', displayName, uid, d.uid, userCreated, true);
    m.acl(acls, uid, 'All');
    summary.users++;
  }

  // Per-user containers (after every user exists, so attendees and members can refer to colleagues).
  for (const [i, p] of people.entries()) {
    const pc = created + 10 * DAY;
    const cal = m.container(containerUids.defaultCalendar(p.uid), 'calendar', p.displayName, p.uid, d.uid, pc, true);
    m.acl(cal, p.uid, 'All');
    if (i % 3 === 0) m.acl(cal, d.uid, 'Read', 1);
    for (let e = 0; e < perUser.events; e++) addEvent(m, rng, cal, p, people, e, descBytes);
    if (i % 10 === 0) {
      const extra = m.container(containerUids.userCalendar(rng.uuid().toLowerCase()), 'calendar', 'Projects', p.uid, d.uid, pc);
      m.acl(extra, p.uid, 'All');
      for (let e = 0; e < 3; e++) addEvent(m, rng, extra, p, people, e, descBytes);
    }
    const book = m.container(containerUids.contacts(p.uid), 'addressbook', 'My contacts', p.uid, d.uid, pc, true);
    m.acl(book, p.uid, 'All');
    const members: { uid: string; cn: string; mail: string }[] = [];
    for (let c = 0; c < perUser.contacts; c++) members.push(addContact(m, rng, book, p));
    if (members.length >= 2) addContactGroup(m, rng, book, p, members.slice(0, Math.min(4, members.length)));
    const collected = m.container(containerUids.collectedContacts(p.uid), 'addressbook', 'Collected contacts', p.uid, d.uid, pc, true);
    m.acl(collected, p.uid, 'All');
    for (let c = 0; c < 2; c++) addContact(m, rng, collected, p);
    const todo = m.container(containerUids.defaultTodolist(p.uid), 'todolist', 'My tasks', p.uid, d.uid, pc, true);
    m.acl(todo, p.uid, 'All');
    for (let t = 0; t < perUser.todos; t++) addTodo(m, rng, todo, p);
    // Domain address book: one card per user.
    const cardItem = m.item(abCid, p.uid, p.displayName, pc, 'system');
    m.rows('t_addressbook_vcard').push(vcard({
      item_id: cardItem, source: `bm://${d.uid}/users/${p.uid}`, formated_name: p.displayName, familynames: p.last, givennames: p.first,
      email: [p.email], email_parameters: ['{"type":"work"}'], company: d.label,
    }));
    m.counts.contacts++;
  }

  // Groups.
  const groups = [
    { name: 'staff', members: people },
    { name: 'sales-team', members: people.filter((_, i) => i % 4 === 1) },
    { name: 'engineering', members: people.filter((_, i) => i % 3 === 2) },
  ];
  for (const g of groups) {
    const uid = rng.uuid();
    const itemId = m.item(dirCid, uid, g.name, created, 'admin0@global.virt');
    m.rows('t_directory_entry').push(dirEntry(itemId, 'GROUP', uid, g.name, `${g.name}@${d.uid}`, false, null));
    m.rows('t_group').push({ item_id: itemId, name: g.name, description: `The ${g.name} group`, server_id: MAIL_SERVER });
    for (const p of g.members) m.rows('t_group_usermember').push({ group_id: itemId, user_id: p.itemId });
    summary.groups++;
  }

  // Mailshares.
  for (const name of ['contact', 'support']) {
    const uid = rng.uuid();
    const displayName = `${name[0].toUpperCase()}${name.slice(1)} (${d.label})`;
    const email = `${name}@${d.uid}`;
    const itemId = m.item(dirCid, uid, displayName, created, 'admin0@global.virt');
    m.rows('t_directory_entry').push(dirEntry(itemId, 'MAILSHARE', uid, displayName, email, false, ouIds[0]));
    m.rows('t_mailbox').push({ item_id: itemId, name, type: 'mailshare', routing: 'internal', quota: 4_194_304, datalocation: MAIL_SERVER });
    m.rows('t_mailbox_email').push({ item_id: itemId, left_address: name, right_address: d.uid, all_aliases: false, is_default: true });
    const acls = m.container(containerUids.mailboxAcls(uid), 'mailboxacl', displayName, uid, d.uid, created, true);
    for (const [pos, p] of people.slice(0, 3).entries()) m.acl(acls, p.uid, 'Write', pos);
    m.mailboxes.push({ uid, domain: d.uid, name, email, displayName, kind: 'mailshare' });
    summary.mailshares++;
  }

  // Resources, with a booking calendar.
  for (const [name, type] of [['room-atlas', 'room'], ['projector-1', 'equipment']] as const) {
    const uid = rng.uuid();
    const label = name === 'room-atlas' ? 'Meeting room Atlas' : 'Projector #1';
    const email = `${name}@${d.uid}`;
    const itemId = m.item(dirCid, uid, label, created, 'admin0@global.virt');
    m.rows('t_directory_entry').push(dirEntry(itemId, 'RESOURCE', uid, label, email, false, ouIds[0]));
    m.rows('t_resource').push({ item_id: itemId, typeidentifier: type, label, description: `${label}, ${rng.pick(CITIES)} office` });
    m.rows('t_mailbox').push({ item_id: itemId, name, type: 'resource', routing: 'internal', datalocation: MAIL_SERVER });
    m.rows('t_mailbox_email').push({ item_id: itemId, left_address: name, right_address: d.uid, all_aliases: false, is_default: true });
    const cal = m.container(containerUids.resourceCalendar(uid), 'calendar', label, uid, d.uid, created, true);
    m.acl(cal, d.uid, 'Invitation');
    const res: Person = { uid, itemId, login: name, email, displayName: label, first: label, last: '' };
    const bookings = Math.max(2, Math.min(20, Math.floor(people.length / 5)));
    for (let e = 0; e < bookings && people.length > 0; e++) addEvent(m, rng, cal, people[e % people.length], [res, ...people], e, 0);
    summary.resources++;
  }
}

function dirEntry(
  itemId: number, kind: string, uid: string, displayname: string, email: string | null, archived: boolean,
  ou: number | null, o: { account?: string; system?: boolean } = {},
): Row {
  return {
    item_id: itemId, kind, account_type: o.account ?? null, entry_uid: uid, displayname, email,
    flag_hidden: false, flag_system: o.system ?? false, flag_archived: archived, orgunit_item_id: ou,
    datalocation: kind === 'USER' || kind === 'MAILSHARE' || kind === 'RESOURCE' ? MAIL_SERVER : null,
  };
}

const VEVENT_NULLS: Row = {
  exdate_timestamp: null, exdate_timezone: null, exdate_precision: null, rdate_timestamp: null, rdate_timezone: null,
  rdate_precision: null, rrule_frequency: null, rrule_interval: null, rrule_count: null, rrule_until_timestamp: null,
  rrule_until_timezone: null, rrule_until_precision: null, rrule_byday: null, rrule_bymonthday: null,
  recurid_timestamp: null, recurid_timezone: null, recurid_precision: null,
};

function addEvent(m: Model, rng: Prng, cid: number, owner: Person, colleagues: Person[], n: number, descBytes: number): void {
  const allDay = rng.chance(0.15);
  const day = BASE_TIME + rng.int(-60, 120) * DAY;
  const start = allDay ? day - 8 * 3_600_000 : day + rng.int(0, 9) * 3_600_000 + (rng.chance(0.5) ? 1_800_000 : 0);
  const end = allDay ? start + DAY : start + rng.int(1, 4) * 1_800_000;
  const precision = allDay ? 'Date' : 'DateTime';
  const uid = rng.uuid().toLowerCase();
  const summary = `${rng.pick(['Meeting', 'Call', 'Review', 'Workshop', 'Lunch', 'Training', 'Demo'])}: ${rng.sentence(3).slice(0, -1)}`;
  const attendees = colleagues.length > 1 ? Array.from({ length: rng.int(0, 3) }, () => rng.pick(colleagues)).filter((p) => p.uid !== owner.uid) : [];
  const unique = [...new Map(attendees.map((a) => [a.uid, a])).values()];
  let description = rng.paragraph(rng.int(1, 3));
  while (description.length < descBytes) description += '\n' + rng.paragraph(4);
  const version = rng.int(1, 4);
  const itemId = m.item(cid, uid, summary, start - rng.int(1, 30) * DAY, owner.email, version);
  const main: Row = {
    ...VEVENT_NULLS,
    dtstart_timestamp: ts(start), dtstart_timezone: allDay ? null : TZ, dtstart_precision: precision,
    dtend_timestamp: ts(end), dtend_timezone: allDay ? null : TZ, dtend_precision: precision,
    summary, location: rng.chance(0.5) ? `${rng.pick(CITIES)}, room ${rng.int(1, 30)}` : null, description,
    class: rng.chance(0.1) ? 'Private' : 'Public', transparency: allDay ? 'Transparent' : 'Opaque', status: 'Confirmed',
    priority: rng.int(0, 9), organizer_uri: null, organizer_cn: owner.displayName, organizer_mailto: owner.email, organizer_dir: `bm://${owner.email.split('@')[1]}/users/${owner.uid}`,
    url: null, categories: rng.chance(0.3) ? [rng.pick(['Work', 'Personal', 'Travel'])] : [],
    cutype: unique.map(() => 'Individual'), member: unique.map(() => ''), att_role: unique.map((_, i) => (i === 0 ? 'RequiredParticipant' : 'OptionalParticipant')),
    partstat: unique.map(() => rng.pick(['NeedsAction', 'Accepted', 'Declined', 'Tentative'])), rsvp: unique.map(() => true),
    cn: unique.map((a) => a.displayName), att_uid: unique.map((a) => a.uid), att_mailto: unique.map((a) => a.email),
    sequence: version - 1, draft: false, item_id: itemId,
  };
  const rows: Row[] = [main];
  if (n % 4 === 1) {
    // Recurring: weekly on the start's weekday, daily or monthly; with a count or an end date.
    const freq = rng.pick(['WEEKLY', 'WEEKLY', 'DAILY', 'MONTHLY']);
    main.rrule_frequency = freq;
    main.rrule_interval = rng.int(1, 2);
    if (rng.chance(0.5)) main.rrule_count = rng.int(4, 12);
    else {
      main.rrule_until_timestamp = ts(start + 90 * DAY);
      main.rrule_until_timezone = allDay ? null : TZ;
      main.rrule_until_precision = precision;
    }
    if (freq === 'WEEKLY') main.rrule_byday = [BYDAY[new Date(start).getUTCDay()]];
    const step = (freq === 'DAILY' ? 1 : freq === 'WEEKLY' ? 7 : 28) * DAY * Number(main.rrule_interval);
    if (rng.chance(0.5)) {
      main.exdate_timestamp = [ts(start + 2 * step)];
      main.exdate_timezone = [allDay ? null : TZ];
      main.exdate_precision = [precision];
    }
    if (rng.chance(0.5)) {
      // An exception: the first repetition moved one hour later, with its own summary.
      rows.push({
        ...main, ...VEVENT_NULLS,
        dtstart_timestamp: ts(start + step + 3_600_000), dtend_timestamp: ts(end + step + 3_600_000),
        summary: `${summary} (moved)`, recurid_timestamp: ts(start + step), recurid_timezone: allDay ? null : TZ, recurid_precision: precision,
        sequence: Number(main.sequence) + 1,
      });
    }
  }
  for (const r of rows) m.rows('t_calendar_vevent').push(r);
  if (rows.length > 1 || main.rrule_frequency) m.rows('t_calendar_series').push({ accept_counters: false, properties: {}, item_id: itemId });
  m.counts.events++;
}

const VCARD_DEFAULTS: Row = {
  kind: 'individual', source: null, formated_name: null, familynames: null, givennames: null, additionalnames: '',
  honorificprefixes: '', honorificsuffixes: '', nickname: null, bday: null, anniversary: null, gender: null,
  adr_label: [], adr_postofficebox: [], adr_extentedaddress: [], adr_streetaddress: [], adr_locality: [], adr_region: [],
  adr_postalcode: [], adr_countryname: [], adr_parameters: [], tel: [], tel_parameters: [], email: [], email_parameters: [],
  impp: [], url: [], title: null, role: null, company: null, division: null, department: null, manager: null,
  assistant: null, spouse: null, member_container_uid: [], member_item_uid: [], member_cn: [], member_mailto: [],
  categories: [], note: null, photo: false,
};

function vcard(r: Row): Row {
  return { ...VCARD_DEFAULTS, ...r };
}

function addContact(m: Model, rng: Prng, cid: number, owner: Person): { uid: string; cn: string; mail: string } {
  const first = rng.pick(FIRST_NAMES);
  const last = rng.pick(LAST_NAMES);
  const company = rng.pick(COMPANIES);
  const mail = `${ascii(first)}.${ascii(last)}@${ascii(company)}.example`;
  const uid = rng.uuid().toLowerCase();
  const cn = `${first} ${last}`;
  const itemId = m.item(cid, uid, cn, BASE_TIME - rng.int(1, 200) * DAY, owner.email, rng.int(1, 3));
  const city = rng.pick(CITIES);
  m.rows('t_addressbook_vcard').push(vcard({
    formated_name: cn, familynames: last, givennames: first, nickname: rng.chance(0.2) ? first.slice(0, 3) : null,
    bday: rng.chance(0.4) ? ts(Date.UTC(1960 + rng.int(0, 40), rng.int(0, 11), rng.int(1, 28))) : null,
    gender: rng.chance(0.5) ? rng.pick(['M', 'F']) : null,
    adr_label: [''], adr_postofficebox: [''], adr_extentedaddress: [''], adr_streetaddress: [`${rng.int(1, 120)} rue ${rng.pick(LAST_NAMES)}`],
    adr_locality: [city], adr_region: [''], adr_postalcode: [String(rng.int(10000, 95999))], adr_countryname: ['France'],
    adr_parameters: ['{"type":"work"}'],
    tel: [`+33 ${rng.int(1, 9)} ${rng.int(10, 99)} ${rng.int(10, 99)} ${rng.int(10, 99)} ${rng.int(10, 99)}`], tel_parameters: ['{"type":"work,voice"}'],
    email: [mail], email_parameters: ['{"type":"work"}'], title: rng.pick(['Engineer', 'Manager', 'Consultant', 'Director', 'Sales rep']),
    company, department: rng.pick(['IT', 'Sales', 'Finance', 'Operations']), categories: rng.chance(0.3) ? ['Clients'] : [],
    note: rng.chance(0.3) ? rng.sentence(10) : null, item_id: itemId,
  }));
  m.counts.contacts++;
  return { uid, cn, mail };
}

function addContactGroup(m: Model, rng: Prng, cid: number, owner: Person, members: { uid: string; cn: string; mail: string }[]): void {
  const uid = rng.uuid().toLowerCase();
  const name = rng.pick(['Clients', 'Suppliers', 'Friends', 'Project team']);
  const bookUid = m.containerUid.get(cid)!;
  const itemId = m.item(cid, uid, name, BASE_TIME - rng.int(1, 100) * DAY, owner.email);
  m.rows('t_addressbook_vcard').push(vcard({
    kind: 'group', formated_name: name, member_container_uid: members.map(() => bookUid), member_item_uid: members.map((x) => x.uid),
    member_cn: members.map((x) => x.cn), member_mailto: members.map((x) => x.mail), item_id: itemId,
  }));
  m.counts.contacts++;
}

function addTodo(m: Model, rng: Prng, cid: number, owner: Person): void {
  const uid = rng.uuid().toLowerCase();
  const summary = `${rng.pick(['Prepare', 'Send', 'Review', 'Call', 'Book', 'Update'])} ${rng.sentence(3).slice(0, -1).toLowerCase()}`;
  const start = BASE_TIME + rng.int(-30, 30) * DAY;
  const status = rng.pick(['NeedsAction', 'InProcess', 'Completed']);
  const itemId = m.item(cid, uid, summary, start - DAY, owner.email, rng.int(1, 3));
  m.rows('t_todolist_vtodo').push({
    uid, dtstart_timestamp: ts(start), dtstart_timezone: TZ, dtstart_precision: 'DateTime',
    due_timestamp: ts(start + rng.int(1, 14) * DAY), due_timezone: TZ, due_precision: 'DateTime',
    summary, class: 'Public', location: null, description: rng.chance(0.5) ? rng.sentence(12) : null, status,
    priority: rng.int(1, 9), organizer_uri: null, organizer_cn: owner.displayName, organizer_mailto: owner.email, url: null,
    categories: [], rrule_frequency: null, rrule_interval: null, rrule_count: null,
    percent: status === 'Completed' ? 100 : status === 'InProcess' ? rng.int(10, 90) : 0,
    completed_timestamp: status === 'Completed' ? ts(start + DAY) : null, completed_timezone: status === 'Completed' ? TZ : null,
    completed_precision: status === 'Completed' ? 'DateTime' : null, sequence: 0, draft: false, item_id: itemId,
  });
  m.counts.todos++;
}

/** Drops the reference schema when the database holds it; refuses a foreign database unless forced. */
async function resetSchema(c: pg.Client, force: boolean): Promise<void> {
  const tables = await c.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
  const ours = tables.rows.some((r) => r.tablename === MARKER_TABLE);
  if (tables.rowCount && !ours && !force) {
    throw new Error(`database ${c.database} holds tables that the reference host did not create; refusing to seed it (use --force)`);
  }
  await c.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
}

/** The host's secret (for the administrative IMAP password and password hashes), created once per root. */
export async function hostSecret(layout: HostLayout): Promise<Buffer> {
  await fs.mkdir(layout.secrets, { recursive: true, mode: 0o700 });
  const file = path.join(layout.secrets, 'host.key');
  try {
    return await fs.readFile(file);
  } catch {
    const key = randomBytes(32);
    await fs.writeFile(file, key, { mode: 0o600, flag: 'wx' }).catch(() => {});
    return fs.readFile(file);
  }
}

/** Password of the Dovecot master user that the host's writers and tests log in with (`<user>*bmadmin`). */
export async function imapAdminPassword(layout: HostLayout): Promise<string> {
  const secret = await hostSecret(layout);
  return createHmac('sha256', secret).update('imap-admin').digest('base64url').slice(0, 24);
}

export const IMAP_ADMIN_USER = 'bmadmin';

async function writeDovecotUsers(layout: HostLayout, mailboxes: Mailbox[], secret: Buffer): Promise<void> {
  await fs.mkdir(layout.dovecot, { recursive: true });
  // Users cannot log in themselves (no password is handed out); the file lists who exists.
  const lines = mailboxes.map((mb) => {
    const pw = createHmac('sha256', secret).update(mb.email).digest('base64url').slice(0, 16);
    return `${mb.email}:${ssha256(pw, createHmac('sha256', secret).update('salt:' + mb.email).digest().subarray(0, 8))}`;
  });
  await fs.writeFile(path.join(layout.dovecot, 'users'), lines.join('\n') + '\n', { mode: 0o640 });
}

async function rmChecked(layout: HostLayout, dir: string): Promise<void> {
  if (!dir.startsWith(layout.root + path.sep)) throw new Error(`refusing to remove ${dir}: outside ${layout.root}`);
  await fs.rm(dir, { recursive: true, force: true });
}

async function writeFiles(layout: HostLayout, rng: Prng, mailboxes: Mailbox[], perMailbox: number, opts: SeedOptions, installationId: string): Promise<number> {
  await fs.mkdir(layout.root, { recursive: true });
  const marker = path.join(layout.root, ROOT_MARKER);
  const entries = await fs.readdir(layout.root);
  const foreign = entries.filter((e) => !['servers', 'dovecot', 'secrets', ROOT_MARKER].includes(e));
  if (!entries.includes(ROOT_MARKER) && foreign.length > 0 && !opts.force) {
    throw new Error(`host root ${layout.root} is not empty and not a reference host; refusing to seed it (use --force)`);
  }
  await fs.writeFile(marker, 'bm-dataprotect reference host\n');
  for (const dir of [layout.spool, layout.archive, layout.filehosting, layout.conf(CORE_SERVER), layout.conf(MAIL_SERVER)]) {
    await rmChecked(layout, dir);
    await fs.mkdir(dir, { recursive: true });
  }

  let seq = 0;
  let total = 0;
  for (const [mi, mb] of mailboxes.entries()) {
    const root = path.join(layout.spool, mb.domain, mb.name);
    const folderDirs = new Map<string, string>();
    for (const f of FOLDERS) {
      const dir = f === 'INBOX' ? root : path.join(root, '.' + f.replace(/\//g, '.'));
      folderDirs.set(f, dir);
      for (const sub of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(dir, sub), { recursive: true });
    }
    await fs.writeFile(path.join(root, 'subscriptions'), FOLDERS.filter((f) => f !== 'INBOX').join('\n') + '\n');
    const peers = mailboxes.filter((x) => x.domain === mb.domain && x.uid !== mb.uid);
    for (let n = 0; n < perMailbox; n++) {
      const folder = n < perMailbox / 2 ? 'INBOX' : FOLDERS[1 + ((n + mi) % (FOLDERS.length - 1))];
      const peer = peers.length ? rng.pick(peers) : mb;
      const outgoing = folder === 'Sent';
      const date = new Date(BASE_TIME - rng.int(0, 120) * DAY - rng.int(0, 86_399) * 1000);
      const messageId = `${rng.hex(16)}.${n}@${mb.domain}`;
      const raw = buildMessage({
        from: outgoing ? `"${mb.displayName}" <${mb.email}>` : `"${peer.displayName}" <${peer.email}>`,
        to: [outgoing ? peer.email : mb.email],
        subject: `${rng.pick(['Re: ', 'Fwd: ', '', ''])}${rng.sentence(rng.int(3, 7)).slice(0, -1)}`,
        date, messageId,
        body: `Hello,\n\n${rng.paragraph(rng.int(2, 6))}\n\n${rng.paragraph(rng.int(1, 3))}\n\n-- \n${outgoing ? mb.displayName : peer.displayName}\n`,
        attachment: n % 3 === 2 ? attachmentFor(rng, n) : undefined,
      });
      const flags = folder === 'INBOX' && n % 4 === 0 ? '' : rng.pick(['S', 'S', 'S', 'FS', 'RS', 'S']);
      const sub = flags === '' && rng.chance(0.5) ? 'new' : 'cur';
      const name = sub === 'new' ? maildirName(date, ++seq, raw.length, '').replace(/:2,$/, '') : maildirName(date, ++seq, raw.length, flags);
      const file = path.join(folderDirs.get(folder)!, sub, name);
      await fs.writeFile(file, raw);
      // Dovecot takes a Maildir message's internal date from its mtime.
      await fs.utimes(file, date, date);
      total++;
    }
    // Archived mail (BlueMind's HSM spool) for some users.
    if (mb.kind === 'user' && mi % 5 === 0) {
      const dir = path.join(layout.archive, 'user', mb.domain, mb.uid);
      await fs.mkdir(dir, { recursive: true });
      for (let a = 0; a < 2; a++) {
        const date = new Date(BASE_TIME - (400 + a * 30) * DAY);
        const raw = buildMessage({
          from: `<archive@${mb.domain}>`, to: [mb.email], subject: `Archived: ${rng.sentence(4).slice(0, -1)}`, date,
          messageId: `${rng.hex(16)}.archived@${mb.domain}`, body: rng.paragraph(5),
        });
        await fs.writeFile(path.join(dir, `${rng.hex(40)}.eml`), raw);
      }
    }
    // File hosting (attachments shared as links) for some users.
    if (mb.kind === 'user' && mi % 8 === 0) {
      const dir = path.join(layout.filehosting, mb.domain, mb.uid);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, `${rng.hex(32)}.bin`), rng.bytes(rng.int(10_000, 60_000)));
    }
  }
  await writeConf(layout, opts.connection, installationId);
  return total;
}

async function writeConf(layout: HostLayout, s: ConnectionSettings, installationId: string): Promise<void> {
  const put = async (server: string, rel: string, text: string, mode = 0o644) => {
    const file = path.join(layout.conf(server), rel);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, text, { mode });
  };
  // bm.ini holds the database credentials on a real BlueMind: it is part of bm/conf, readable by root only.
  const ini = (host: string) =>
    `[global]\nhost = ${host}\ndbtype = PGSQL\ndb = ${s.database}\nuser = ${s.user}\n` +
    (s.password ? `password = ${s.password}\n` : '') + `hz-member-address = ${host}\n`;
  await put(CORE_SERVER, 'etc/bm/bm.ini', ini('127.0.0.1'), 0o600);
  await put(CORE_SERVER, 'etc/bm/mcast.id', installationId + '\n');
  await put(CORE_SERVER, 'etc/bm-node/rsync.excludes', '*.tmp\n*/tmp/*\n');
  await put(CORE_SERVER, 'etc/postgresql/15/main/postgresql.conf', "listen_addresses = '127.0.0.1'\nmax_connections = 200\nshared_buffers = 512MB\n");
  await put(MAIL_SERVER, 'etc/bm/bm.ini', ini('127.0.0.1'), 0o600);
  await put(MAIL_SERVER, 'etc/bm/mcast.id', installationId + '\n');
  await put(MAIL_SERVER, 'etc/dovecot/conf.d/10-mail.conf', 'mail_location = maildir:/var/spool/bm-mail/%d/%n\n');
}
