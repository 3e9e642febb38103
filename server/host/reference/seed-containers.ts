// Container items the seeder puts in each user's calendars, address books and todolists: single and recurring
// events (exceptions, exdates, attendees), contacts and contact groups, tasks.

import type { Prng } from '../../demo/prng.js';
import { BASE_TIME, DAY, TZ, type Person, type Row, type SeedModel, ascii, ts } from './seed-model.js';
import { CITIES, COMPANIES, FIRST_NAMES, LAST_NAMES, paragraph, sentence } from './words.js';

const BYDAY = ['SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA'];

const VEVENT_NULLS: Row = {
  exdate_timestamp: null, exdate_timezone: null, exdate_precision: null, rdate_timestamp: null, rdate_timezone: null,
  rdate_precision: null, rrule_frequency: null, rrule_interval: null, rrule_count: null, rrule_until_timestamp: null,
  rrule_until_timezone: null, rrule_until_precision: null, rrule_byday: null, rrule_bymonthday: null,
  recurid_timestamp: null, recurid_timezone: null, recurid_precision: null,
};

export function addEvent(m: SeedModel, rng: Prng, cid: number, owner: Person, colleagues: Person[], n: number, descBytes: number): void {
  const allDay = rng.chance(0.15);
  const day = BASE_TIME + rng.int(-60, 120) * DAY;
  const start = allDay ? day - 8 * 3_600_000 : day + rng.int(0, 9) * 3_600_000 + (rng.chance(0.5) ? 1_800_000 : 0);
  const end = allDay ? start + DAY : start + rng.int(1, 4) * 1_800_000;
  const precision = allDay ? 'Date' : 'DateTime';
  const uid = rng.uuid().toLowerCase();
  const summary = `${rng.pick(['Meeting', 'Call', 'Review', 'Workshop', 'Lunch', 'Training', 'Demo'])}: ${sentence(rng, 3).slice(0, -1)}`;
  const attendees = colleagues.length > 1 ? Array.from({ length: rng.int(0, 3) }, () => rng.pick(colleagues)).filter((p) => p.uid !== owner.uid) : [];
  const unique = [...new Map(attendees.map((a) => [a.uid, a])).values()];
  let description = paragraph(rng, rng.int(1, 3));
  while (description.length < descBytes) description += '\n' + paragraph(rng, 4);
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

export function vcard(r: Row): Row {
  return { ...VCARD_DEFAULTS, ...r };
}

export function addContact(m: SeedModel, rng: Prng, cid: number, owner: Person): { uid: string; cn: string; mail: string } {
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
    note: rng.chance(0.3) ? sentence(rng, 10) : null, item_id: itemId,
  }));
  m.counts.contacts++;
  return { uid, cn, mail };
}

export function addContactGroup(m: SeedModel, rng: Prng, cid: number, owner: Person, members: { uid: string; cn: string; mail: string }[]): void {
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

export function addTodo(m: SeedModel, rng: Prng, cid: number, owner: Person): void {
  const uid = rng.uuid().toLowerCase();
  const summary = `${rng.pick(['Prepare', 'Send', 'Review', 'Call', 'Book', 'Update'])} ${sentence(rng, 3).slice(0, -1).toLowerCase()}`;
  const start = BASE_TIME + rng.int(-30, 30) * DAY;
  const status = rng.pick(['NeedsAction', 'InProcess', 'Completed']);
  const itemId = m.item(cid, uid, summary, start - DAY, owner.email, rng.int(1, 3));
  m.rows('t_todolist_vtodo').push({
    uid, dtstart_timestamp: ts(start), dtstart_timezone: TZ, dtstart_precision: 'DateTime',
    due_timestamp: ts(start + rng.int(1, 14) * DAY), due_timezone: TZ, due_precision: 'DateTime',
    summary, class: 'Public', location: null, description: rng.chance(0.5) ? sentence(rng, 12) : null, status,
    priority: rng.int(1, 9), organizer_uri: null, organizer_cn: owner.displayName, organizer_mailto: owner.email, url: null,
    categories: [], rrule_frequency: null, rrule_interval: null, rrule_count: null,
    percent: status === 'Completed' ? 100 : status === 'InProcess' ? rng.int(10, 90) : 0,
    completed_timestamp: status === 'Completed' ? ts(start + DAY) : null, completed_timezone: status === 'Completed' ? TZ : null,
    completed_precision: status === 'Completed' ? 'DateTime' : null, sequence: 0, draft: false, item_id: itemId,
  });
  m.counts.todos++;
}

const NOTE_COLORS = ['YELLOW', 'BLUE', 'GREEN', 'PINK', 'PURPLE', 'WHITE'];

export function addNote(m: SeedModel, rng: Prng, cid: number, owner: Person): void {
  const uid = rng.uuid().toLowerCase();
  const subject = sentence(rng, 4).slice(0, -1);
  const itemId = m.item(cid, uid, subject, BASE_TIME - rng.int(1, 90) * DAY, owner.email, rng.int(1, 3));
  m.rows('t_notes_vnote').push({
    subject, body: paragraph(rng, rng.int(1, 3)), color: rng.pick(NOTE_COLORS),
    height: 200 + rng.int(0, 10) * 10, width: 200 + rng.int(0, 10) * 10, posx: rng.int(0, 800), posy: rng.int(0, 600), item_id: itemId,
  });
  m.counts.notes++;
}

/** What the web applications keep per user (BlueMind's IWebAppData): one item per key, the value as text. */
export function addWebAppData(m: SeedModel, rng: Prng, cid: number, owner: Person): void {
  const entries: [string, string][] = [
    ['mail-app:signature', JSON.stringify({ html: `<p>${owner.displayName}</p>` })],
    ['mail-app:sort', JSON.stringify({ column: rng.pick(['date', 'from', 'subject']), order: rng.pick(['asc', 'desc']) })],
    ['calendar:view', JSON.stringify({ view: rng.pick(['day', 'week', 'month']), workingHours: [8, 18] })],
  ];
  for (const [key, value] of entries) {
    const itemId = m.item(cid, key, key, BASE_TIME - rng.int(1, 60) * DAY, owner.email);
    m.rows('t_webappdata').push({ key, value, item_id: itemId });
    m.counts.webAppData++;
  }
}
