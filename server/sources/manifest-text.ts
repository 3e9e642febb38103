// The stored form of a `bm/pgsql` manifest, laid out line by line so that a restore of one entity reads the
// few lines it needs and parses nothing else (on a large installation the manifest is megabytes: thousands of
// entities, and the row groups of 100,000 containers).
//
//   line 1                 the fields, then `"rowExport":{"intSize":…,"columns":{…},"tables":{`
//   one line per table     `"<table>":{"start":…,"groups":[[…],…]}` (the row groups of that table)
//   `}},"entities":[`
//   one line per entity    the domains and organisational units first, then the others in uid order, each
//                          starting `{"uid":…,` (line 1's "sortedEntities": where the first of them starts,
//                          in bytes, 15 digits; a line of them is found by halving: see sorted-lines.ts)
//   `]}`
//
// It is plain JSON (`readManifest` parses it whole). A manifest without `rowExport` has `,"entities":[` at the
// end of line 1. The stream chunker stores only the lines that changed, not the whole list again.

import type { ExportedEntity, PgManifest } from './pgsql-manifest.js';

const ENTITIES_OPEN = ',"entities":[';
const TABLES_OPEN = ',"tables":{';
const TABLES_CLOSE = '}}' + ENTITIES_OPEN;

/** Listed first, and all read by a one-entity read: a restored entity's unit path needs its units' uids. */
const isFrame = (e: ExportedEntity) => e.kind === 'DOMAIN' || e.kind === 'ORG_UNIT';

/** The manifest's last line, after the sorted entities. */
export const SORTED_ENTITIES_END = '\n]}\n';
const SORTED_AT_DIGITS = 15;
const SORTED_AT = /"sortedEntities":"(\d{15})"/;

/**
 * Where the sorted entity lines start in a manifest of `size` bytes, from its first line; null for a manifest
 * without them (earlier generations), or one whose figure cannot be right.
 */
export function sortedEntitiesAt(firstLine: Buffer, size: number): number | null {
  const m = SORTED_AT.exec(firstLine.toString('utf8'));
  if (!m) return null;
  const at = Number(m[1]);
  return at > firstLine.length && at <= size - SORTED_ENTITIES_END.length + 1 ? at : null;
}

export function manifestText(manifest: PgManifest): string {
  const { entities, rowExport, ...top } = manifest;
  // Its value is set once the text is made (same width: nothing moves).
  let head = JSON.stringify({ ...top, sortedEntities: '0'.repeat(SORTED_AT_DIGITS) }).slice(0, -1);
  if (rowExport) {
    const { tables, ...rest } = rowExport;
    const lines = Object.entries(tables).map(([t, v]) => `${JSON.stringify(t)}:${JSON.stringify(v)}`);
    head += ',"rowExport":' + JSON.stringify(rest).slice(0, -1) + TABLES_OPEN + '\n' + lines.join(',\n') + '\n' + TABLES_CLOSE;
  } else {
    head += ENTITIES_OPEN;
  }
  const frames = entities.filter(isFrame).map((e) => JSON.stringify(e) + ',\n');
  const sorted = entities.filter((e) => !isFrame(e)).sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0)).map(({ uid, ...rest }) => JSON.stringify({ uid, ...rest }));
  let text = head + '\n' + frames.join('') + sorted.join(',\n');
  // No other entity: the last frame's comma goes (the sorted list, empty, starts at the last line).
  if (sorted.length === 0 && frames.length > 0) text = text.slice(0, -2);
  text += SORTED_ENTITIES_END;
  const at = sorted.length === 0 ? Buffer.byteLength(text) - SORTED_ENTITIES_END.length + 1 : Buffer.byteLength(head) + 1 + frames.reduce((n, f) => n + Buffer.byteLength(f), 0);
  return text.replace('"sortedEntities":"' + '0'.repeat(SORTED_AT_DIGITS) + '"', `"sortedEntities":"${String(at).padStart(SORTED_AT_DIGITS, '0')}"`);
}

/**
 * The manifest with, of its entities, the domains, the organisational units and those holding `uid` (the
 * entity, or the domain whose calendar or address book it is); and, of the row groups, only those of these
 * entities' containers, the bytes before and between them as groups without a name (`''`). Null when `raw`
 * is not laid out line by line (read it whole). `check` sees the fields first (a newer format is refused
 * before its lines are read).
 */
export function manifestFor(raw: Buffer, uid: string, check: (head: PgManifest) => void): PgManifest | null {
  const firstEnd = raw.indexOf(10);
  if (firstEnd < 0) return null;
  const first = raw.toString('utf8', 0, firstEnd);
  let m: PgManifest;
  let tableLines: [number, number] | null = null;
  let listStart: number;
  if (first.endsWith(TABLES_OPEN)) {
    m = JSON.parse(first + '}}}') as PgManifest;
    check(m);
    const close = raw.indexOf('\n' + TABLES_CLOSE + '\n', firstEnd);
    if (close < 0) return null;
    tableLines = [firstEnd + 1, close];
    listStart = close + TABLES_CLOSE.length + 2;
  } else if (first.endsWith(ENTITIES_OPEN)) {
    m = JSON.parse(first.slice(0, -ENTITIES_OPEN.length) + '}') as PgManifest;
    check(m);
    listStart = firstEnd + 1;
  } else {
    return null;
  }

  const entities: ExportedEntity[] = [];
  let at = listStart;
  const candidates = new Set<number>();
  if (tableLines) {
    // Written by manifestText: the domains and units lead the list; read until the first other entity.
    for (;;) {
      const end = lineEnd(raw, at);
      const e = entityAt(raw, at, end);
      if (!e || !isFrame(e)) break;
      entities.push(e);
      at = end + 1;
    }
  } else {
    // Maybe written before domains and units came first: the lines that name their kinds.
    for (const kind of ['"kind":"DOMAIN"', '"kind":"ORG_UNIT"']) linesHolding(raw, Buffer.from(kind), at, candidates);
  }
  // The lines holding the uid as a JSON string; each candidate is parsed and checked (a name that holds one
  // of these strings costs a parse, nothing more).
  linesHolding(raw, Buffer.from(JSON.stringify(uid)), at, candidates);
  for (const start of [...candidates].sort((a, b) => a - b)) {
    const e = entityAt(raw, start, lineEnd(raw, start));
    if (e && (e.uid === uid || (!tableLines && isFrame(e)))) entities.push(e);
  }
  m.entities = entities;

  if (tableLines && m.rowExport) {
    const wanted = new Set<string>();
    for (const e of entities) for (const c of e.containers) if (c.id !== undefined && (e.uid === uid || c.uid === uid)) wanted.add(c.id);
    const tables: NonNullable<PgManifest['rowExport']>['tables'] = {};
    for (let s = tableLines[0]; s < tableLines[1]; ) {
      const end = lineEnd(raw, s);
      const [name, groups] = tableGroups(raw.toString('utf8', s, end), wanted);
      tables[name] = groups;
      s = end + 1;
    }
    m.rowExport.tables = tables;
  }
  return m;
}

function linesHolding(raw: Buffer, needle: Buffer, from: number, into: Set<number>): void {
  for (let hit = raw.indexOf(needle, from); hit >= 0; hit = raw.indexOf(needle, hit + needle.length)) into.add(raw.lastIndexOf(10, hit) + 1);
}

function lineEnd(raw: Buffer, start: number): number {
  const end = raw.indexOf(10, start);
  return end < 0 ? raw.length : end;
}

function entityAt(raw: Buffer, start: number, end: number): ExportedEntity | null {
  let text = raw.toString('utf8', start, end);
  if (text.endsWith(',')) text = text.slice(0, -1);
  return text.startsWith('{') ? (JSON.parse(text) as ExportedEntity) : null;
}

/**
 * One table's line, `"<table>":{"start":…,"groups":[["<id>",<length>],…]}`, with only the groups in `wanted`
 * named and the bytes before and between them as unnamed groups. Scanned, not parsed: the line of a
 * large table holds 100,000 groups, and JSON.parse would make an array of each (a line the scan does not
 * expect, an id with escapes, is parsed).
 */
function tableGroups(line: string, wanted: Set<string>): [string, { start: number; groups: [string, number][] }] {
  if (line.endsWith(',')) line = line.slice(0, -1);
  try {
    return scanTable(line, wanted);
  } catch {
    let parsed: Record<string, { start: number; groups: [string, number][] }>;
    try {
      parsed = JSON.parse(`{${line}}`) as typeof parsed;
    } catch {
      throw new Error('the database part manifest is damaged (a table of rowExport)');
    }
    const [[name, { start, groups }]] = Object.entries(parsed);
    const out: [string, number][] = [];
    let gap = 0;
    for (const [g, len] of groups) {
      if (!wanted.has(g)) gap += len;
      else (gap && out.push(['', gap]), out.push([g, len]), (gap = 0));
    }
    return [name, { start, groups: out }];
  }
}

function scanTable(line: string, wanted: Set<string>): [string, { start: number; groups: [string, number][] }] {
  const open = line.indexOf(':{"start":');
  const groupsAt = line.indexOf(',"groups":[', open);
  if (open < 0 || groupsAt < 0 || !line.endsWith(']}')) throw new Error('unexpected');
  const name = JSON.parse(line.slice(0, open)) as string;
  const start = Number(line.slice(open + 10, groupsAt));
  // Where the wanted groups start (a native search each), in order: the scan compares no id, and stops after
  // the last of them (the bytes after it are no group's that this read needs).
  const marks: [number, string][] = [];
  for (const id of wanted) {
    const at = line.indexOf(`[${JSON.stringify(id)},`, groupsAt);
    if (at >= 0) marks.push([at, id]);
  }
  marks.sort((a, b) => a[0] - b[0]);
  const groups: [string, number][] = [];
  let gap = 0;
  let i = groupsAt + 11;
  for (const [at, id] of marks) {
    // `["<id>",<length>]` then `,`: from each group's start, past its id, to its length.
    for (;;) {
      if (line.charCodeAt(i) !== 91) throw new Error('unexpected');
      const lenAt = line.indexOf('",', i + 2) + 2;
      let j = lenAt;
      let len = 0;
      let c = line.charCodeAt(j);
      for (; c >= 48 && c <= 57; c = line.charCodeAt(++j)) len = len * 10 + (c - 48);
      if (lenAt < 2 || c !== 93 || j === lenAt) throw new Error('unexpected');
      const here = i;
      i = j + 2;
      if (here === at) {
        if (gap) groups.push(['', gap]);
        groups.push([id, len]);
        gap = 0;
        break;
      }
      if (here > at) throw new Error('unexpected');
      gap += len;
    }
  }
  return [name, { start, groups }];
}
