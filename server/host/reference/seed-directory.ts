// The directory the seeder builds in each domain: the domain's entry, organisational units, users (with their
// password hashes, mailboxes and personal containers), groups, mailshares and resources with booking calendars.

import type { Prng } from '../../demo/prng.js';
import { mailboxPasswordHash } from './credentials.js';
import { MAIL_SERVER } from './layout.js';
import { containerUids } from './schema.js';
import { addContact, addContactGroup, addEvent, addNote, addTodo, addWebAppData, vcard } from './seed-containers.js';
import { BASE_TIME, DAY, TZ, type Person, type Row, type SeedModel, ascii, ts } from './seed-model.js';
import { CITIES, FIRST_NAMES, LAST_NAMES } from './words.js';

export interface DomainSpec {
  uid: string;
  label: string;
  aliases: string[];
}

export const DOMAINS: DomainSpec[] = [
  { uid: 'acme.lan', label: 'ACME', aliases: ['acme.example'] },
  { uid: 'globex.lan', label: 'Globex', aliases: [] },
];

const OU_TREE = [['Headquarters'], ['Headquarters', 'Sales'], ['Headquarters', 'Sales', 'EMEA'], ['Headquarters', 'Engineering'], ['Support']];

export function seedDomain(
  m: SeedModel, rngs: { rng: Prng; extra: Prng }, d: DomainSpec, userCount: number,
  perUser: { events: number; contacts: number; todos: number },
  descBytes: number, secret: Buffer,
): void {
  const { rng, extra: rngExtra } = rngs;
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
    m.counts.orgUnits++;
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
    m.rows('t_domain_user').push({
      item_id: itemId, login, password: mailboxPasswordHash(secret, email),
      password_lastchange: ts(userCreated), password_mustchange: false, password_neverexpires: i % 10 === 0, archived,
      system: false, hidden: false, routing: 'internal', server_id: MAIL_SERVER,
      properties: { lang: i % 2 === 0 ? 'fr' : 'en', tz: TZ }, password_algorithm: 'SSHA256', mailbox_copy_guid: rng.uuid().toLowerCase(),
    });
    m.rows('t_mailbox').push({ item_id: itemId, name: login, type: 'user', archived, routing: 'internal', quota: 1_048_576, datalocation: MAIL_SERVER });
    m.rows('t_mailbox_email').push({ item_id: itemId, left_address: login, right_address: d.uid, all_aliases: true, is_default: true });
    m.mailboxes.push({ uid, domain: d.uid, name: login, email, displayName, kind: 'user' });
    const acls = m.container(containerUids.mailboxAcls(uid), 'mailboxacl', displayName, uid, d.uid, userCreated, true);
    m.acl(acls, uid, 'All');
    m.counts.users++;
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

  // Notes and what the web applications keep, per user.
  for (const p of people) {
    const pc = created + 10 * DAY;
    const notes = m.container(containerUids.defaultNotes(p.uid), 'notes', 'My notes', p.uid, d.uid, pc, true);
    m.acl(notes, p.uid, 'All');
    for (let n = 0, count = rngExtra.int(2, 4); n < count; n++) addNote(m, rngExtra, notes, p);
    const data = m.container(containerUids.webAppData(p.uid), 'webappdata', `webappdata of ${p.displayName}`, p.uid, d.uid, pc, true);
    m.acl(data, p.uid, 'All');
    addWebAppData(m, rngExtra, data, p);
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
    m.counts.groups++;
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
    m.counts.mailshares++;
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
    m.counts.resources++;
  }

  // A domain calendar (BlueMind's CALENDAR directory entry): the company's holidays, readable by everyone.
  const holidays = m.container(containerUids.domainCalendar(`holidays-${ascii(d.uid)}`), 'calendar', `${d.label} holidays`, d.uid, d.uid, created);
  m.acl(holidays, d.uid, 'Read');
  const admin: Person = { uid: d.uid, itemId: domItem, login: 'admin0', email: `admin0@${d.uid}`, displayName: d.label, first: d.label, last: '' };
  for (let e = 0; e < 4; e++) addEvent(m, rngExtra, holidays, admin, [], e, 0);
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
