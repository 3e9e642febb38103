// Renders a container export (JSON lines of BlueMind rows) as ICS (calendars, todolists) or VCF (address books),
// with ical.js. A series and its exceptions share a UID; exceptions carry RECURRENCE-ID.

import ICAL from 'ical.js';
import { RENDERED_TYPES, type ContainerType, type EntityRenderer, type ItemSummary } from '../port.js';
import { decodeItem, type ExportHead } from './entities.js';

type Row = Record<string, any>;

function time(ts: string | null | undefined, precision: string | null | undefined): ICAL.Time | null {
  if (!ts) return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})/.exec(ts);
  if (!m) return null;
  const isDate = precision === 'Date';
  return ICAL.Time.fromData({
    year: +m[1], month: +m[2], day: +m[3],
    hour: isDate ? 0 : +m[4], minute: isDate ? 0 : +m[5], second: isDate ? 0 : +m[6], isDate,
  });
}

function addTime(comp: ICAL.Component, name: string, ts: string | null | undefined, tz: string | null | undefined, precision: string | null | undefined): void {
  const t = time(ts, precision);
  if (!t) return;
  const p = comp.addPropertyWithValue(name, t);
  if (tz && precision !== 'Date') p.setParameter('tzid', tz);
}

function text(comp: ICAL.Component, name: string, v: unknown): void {
  if (v !== null && v !== undefined && v !== '') comp.addPropertyWithValue(name, String(v));
}

const CLASS: Record<string, string> = { Public: 'PUBLIC', Private: 'PRIVATE', Confidential: 'CONFIDENTIAL' };
const PARTSTAT: Record<string, string> = { NeedsAction: 'NEEDS-ACTION', Accepted: 'ACCEPTED', Declined: 'DECLINED', Tentative: 'TENTATIVE' };
const ROLE: Record<string, string> = { RequiredParticipant: 'REQ-PARTICIPANT', OptionalParticipant: 'OPT-PARTICIPANT', Chair: 'CHAIR', NonParticipant: 'NON-PARTICIPANT' };
const TODO_STATUS: Record<string, string> = { NeedsAction: 'NEEDS-ACTION', InProcess: 'IN-PROCESS', Completed: 'COMPLETED', Cancelled: 'CANCELLED' };

function recur(r: Row): ICAL.Recur | null {
  if (!r.rrule_frequency) return null;
  const data: Record<string, unknown> = { freq: r.rrule_frequency, interval: r.rrule_interval ?? 1 };
  if (r.rrule_count) data.count = r.rrule_count;
  const until = time(r.rrule_until_timestamp, r.rrule_until_precision);
  if (until) data.until = until;
  if (r.rrule_byday?.length) data.byday = r.rrule_byday;
  if (r.rrule_bymonthday?.length) data.bymonthday = r.rrule_bymonthday;
  return ICAL.Recur.fromData(data as any);
}

function vevent(item: Row, r: Row): ICAL.Component {
  const ev = new ICAL.Component('vevent');
  text(ev, 'uid', item.uid);
  ev.addPropertyWithValue('dtstamp', time(item.updated, 'DateTime')!);
  addTime(ev, 'dtstart', r.dtstart_timestamp, r.dtstart_timezone, r.dtstart_precision);
  addTime(ev, 'dtend', r.dtend_timestamp, r.dtend_timezone, r.dtend_precision);
  addTime(ev, 'recurrence-id', r.recurid_timestamp, r.recurid_timezone, r.recurid_precision);
  text(ev, 'summary', r.summary);
  text(ev, 'location', r.location);
  text(ev, 'description', r.description);
  if (r.class) text(ev, 'class', CLASS[r.class] ?? r.class);
  if (r.transparency) text(ev, 'transp', String(r.transparency).toUpperCase());
  if (r.status) text(ev, 'status', String(r.status).toUpperCase());
  if (r.priority !== null && r.priority !== undefined) ev.addPropertyWithValue('priority', r.priority);
  ev.addPropertyWithValue('sequence', r.sequence ?? 0);
  if (r.categories?.length) {
    const p = new ICAL.Property('categories');
    p.setValues(r.categories);
    ev.addProperty(p);
  }
  const rule = recur(r);
  if (rule) ev.addPropertyWithValue('rrule', rule);
  for (const [i, ex] of ((r.exdate_timestamp as string[] | null) ?? []).entries()) {
    addTime(ev, 'exdate', ex, r.exdate_timezone?.[i], r.exdate_precision?.[i]);
  }
  if (r.organizer_mailto) {
    const p = ev.addPropertyWithValue('organizer', `mailto:${r.organizer_mailto}`);
    if (r.organizer_cn) p.setParameter('cn', r.organizer_cn);
  }
  for (const [i, mail] of ((r.att_mailto as string[] | null) ?? []).entries()) {
    const p = ev.addPropertyWithValue('attendee', `mailto:${mail}`);
    if (r.cn?.[i]) p.setParameter('cn', r.cn[i]);
    if (r.partstat?.[i]) p.setParameter('partstat', PARTSTAT[r.partstat[i]] ?? r.partstat[i]);
    if (r.att_role?.[i]) p.setParameter('role', ROLE[r.att_role[i]] ?? r.att_role[i]);
    if (r.rsvp?.[i] !== undefined && r.rsvp?.[i] !== null) p.setParameter('rsvp', r.rsvp[i] ? 'TRUE' : 'FALSE');
  }
  return ev;
}

function vtodo(item: Row, r: Row): ICAL.Component {
  const td = new ICAL.Component('vtodo');
  text(td, 'uid', r.uid ?? item.uid);
  td.addPropertyWithValue('dtstamp', time(item.updated, 'DateTime')!);
  addTime(td, 'dtstart', r.dtstart_timestamp, r.dtstart_timezone, r.dtstart_precision);
  addTime(td, 'due', r.due_timestamp, r.due_timezone, r.due_precision);
  addTime(td, 'completed', r.completed_timestamp, null, r.completed_precision);
  text(td, 'summary', r.summary);
  text(td, 'description', r.description);
  text(td, 'location', r.location);
  if (r.status) text(td, 'status', TODO_STATUS[r.status] ?? r.status);
  if (r.priority !== null && r.priority !== undefined) td.addPropertyWithValue('priority', r.priority);
  if (r.percent !== null && r.percent !== undefined) td.addPropertyWithValue('percent-complete', r.percent);
  const rule = recur(r);
  if (rule) td.addPropertyWithValue('rrule', rule);
  return td;
}

function vcard(item: Row, r: Row): ICAL.Component {
  const vc = new ICAL.Component('vcard');
  vc.addPropertyWithValue('version', '4.0');
  text(vc, 'uid', item.uid);
  if (r.kind === 'group') text(vc, 'kind', 'group');
  text(vc, 'fn', r.formated_name ?? item.displayname ?? '');
  if (r.kind !== 'group') {
    const n = new ICAL.Property('n', vc);
    n.setValue([r.familynames ?? '', r.givennames ?? '', r.additionalnames ?? '', r.honorificprefixes ?? '', r.honorificsuffixes ?? ''] as any);
    vc.addProperty(n);
  }
  text(vc, 'nickname', r.nickname);
  if (r.bday) vc.addPropertyWithValue('bday', String(r.bday).slice(0, 10).replace(/-/g, ''));
  text(vc, 'gender', r.gender);
  for (const [i, mail] of ((r.email as string[] | null) ?? []).entries()) {
    const p = vc.addPropertyWithValue('email', mail);
    const type = safeType(r.email_parameters?.[i]);
    if (type) p.setParameter('type', type);
  }
  for (const [i, tel] of ((r.tel as string[] | null) ?? []).entries()) {
    const p = vc.addPropertyWithValue('tel', tel);
    const type = safeType(r.tel_parameters?.[i]);
    if (type) p.setParameter('type', type);
  }
  for (const [i, street] of ((r.adr_streetaddress as string[] | null) ?? []).entries()) {
    const p = new ICAL.Property('adr', vc);
    p.setValue([r.adr_postofficebox?.[i] ?? '', r.adr_extentedaddress?.[i] ?? '', street ?? '', r.adr_locality?.[i] ?? '', r.adr_region?.[i] ?? '', r.adr_postalcode?.[i] ?? '', r.adr_countryname?.[i] ?? ''] as any);
    vc.addProperty(p);
  }
  text(vc, 'title', r.title);
  text(vc, 'role', r.role);
  if (r.company || r.department) {
    const p = new ICAL.Property('org', vc);
    p.setValue([r.company ?? '', r.department ?? ''] as any);
    vc.addProperty(p);
  }
  if (r.categories?.length) {
    const p = new ICAL.Property('categories', vc);
    p.setValues(r.categories);
    vc.addProperty(p);
  }
  text(vc, 'note', r.note);
  for (const m of (r.member_item_uid as string[] | null) ?? []) vc.addPropertyWithValue('member', `urn:uuid:${m}`);
  return vc;
}

function safeType(json: string | null | undefined): string | null {
  if (!json) return null;
  try {
    const t = (JSON.parse(json) as { type?: string }).type;
    return t ?? null;
  } catch {
    return null;
  }
}

/** Each string of the export is one or more complete JSON lines. */
async function* parsed(lines: AsyncIterable<string>): AsyncGenerator<Row> {
  for await (const chunk of lines) for (const line of chunk.split('\n')) if (line.trim()) yield JSON.parse(line);
}

/** `timestamp without time zone` text as `YYYY-MM-DDTHH:MM:SS`, or `YYYY-MM-DD` for a whole day. */
function localTime(ts: unknown, precision: unknown): string | null {
  if (typeof ts !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(ts)) return null;
  return precision === 'Date' ? ts.slice(0, 10) : ts.slice(0, 19).replace(' ', 'T');
}

function summaryOf(type: ContainerType, item: Row, rows: Row[]): ItemSummary {
  // A series' master row (no RECURRENCE-ID) speaks for the event.
  const r = rows.find((x) => !x.recurid_timestamp) ?? rows[0] ?? {};
  const changed = { date: localTime(item.updated, 'DateTime'), timeZone: null };
  const uid = String(item.uid);
  switch (type) {
    case 'calendar': {
      const date = localTime(r.dtstart_timestamp, r.dtstart_precision);
      return { uid, summary: r.summary ?? item.displayname ?? '', ...(date ? { date, timeZone: r.dtstart_precision === 'Date' ? null : r.dtstart_timezone ?? null } : changed) };
    }
    case 'todolist': {
      const due = localTime(r.due_timestamp, r.due_precision);
      const date = due ?? localTime(r.dtstart_timestamp, r.dtstart_precision);
      const tz = due ? r.due_timezone : r.dtstart_timezone;
      return { uid, summary: r.summary ?? item.displayname ?? '', ...(date ? { date, timeZone: tz ?? null } : changed) };
    }
    case 'addressbook':
      return { uid, summary: r.formated_name ?? item.displayname ?? '', ...changed };
    case 'notes':
      return { uid, summary: r.subject ?? item.displayname ?? '', ...changed };
    case 'webappdata':
      return { uid, summary: r.key ?? item.displayname ?? uid, ...changed };
  }
}

export const referenceRenderer: EntityRenderer = {
  async summarize(type, lines) {
    let head: ExportHead | null = null;
    const out: ItemSummary[] = [];
    for await (const row of parsed(lines)) {
      if ('container' in row) {
        head = row as ExportHead;
        continue;
      }
      if (!head) throw new Error('export stream has no container line');
      const { item, rows } = decodeItem(head, type, row);
      out.push(summaryOf(type, item, rows));
    }
    return out;
  },

  async render(type: ContainerType, lines: AsyncIterable<string>): Promise<string> {
    if (!RENDERED_TYPES.includes(type)) throw new Error(`a ${type} container has no ICS or VCF form`);
    let head: ExportHead | null = null;
    const cards: string[] = [];
    const cal = new ICAL.Component('vcalendar');
    cal.addPropertyWithValue('prodid', '-//bm-dataprotect//reference host//EN');
    cal.addPropertyWithValue('version', '2.0');
    for await (const row of parsed(lines)) {
      if ('container' in row) {
        head = row as ExportHead;
        if (type !== 'addressbook') text(cal, 'x-wr-calname', head.container?.name);
        continue;
      }
      if (!head) throw new Error('export stream has no container line');
      const { item, rows } = decodeItem(head, type, row);
      for (const r of rows) {
        if (type === 'addressbook') cards.push(vcard(item, r).toString());
        else if (type === 'calendar') cal.addSubcomponent(vevent(item, r));
        else cal.addSubcomponent(vtodo(item, r));
      }
    }
    if (type === 'addressbook') return cards.join('\r\n') + (cards.length ? '\r\n' : '');
    return cal.toString() + '\r\n';
  },
};
