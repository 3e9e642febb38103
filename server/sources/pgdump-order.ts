// Rewrites a pg_dump custom-format stream (uncompressed) so that each table's COPY rows come in key order
// (item_id, else id, else the whole row) instead of the heap's physical order. Row order in a table carries no
// meaning, so pg_restore rebuilds the same tables; but PostgreSQL puts updated and inserted rows wherever a page
// has room, which scatters a 1% change over most of a dump's chunks. In key order a changed row stays where it
// was, and the content-defined chunker stores only the chunks around it.
//
// Everything but the rows passes through byte for byte (header, table of contents, block framing: one chunk per
// row as pg_dump writes them, so data offsets in the TOC stay valid). Anything unexpected (another archive
// version, compressed data, large objects, a table larger than the memory limit) is passed through unchanged
// from that point on.
//
// With `groups`, the rows of the tables it names are ordered by group first (e.g. an item's container), and
// where each group's rows lie in the output is recorded (`ranges`): a container's rows can then be read back from
// the stored dump alone. Format: PostgreSQL's pg_backup_archiver.c / pg_backup_custom.c, archive versions 1.14–1.15.

import { Transform, type TransformCallback } from 'node:stream';

const BLK_DATA = 1;

class NeedMore extends Error {}

interface TocEntry {
  desc: string;
  copyStmt: string | null;
}

interface Reader {
  buf: Buffer;
  pos: number;
}

function byte(r: Reader): number {
  if (r.pos + 1 > r.buf.length) throw new NeedMore();
  return r.buf[r.pos++];
}

function int(r: Reader, intSize: number): number {
  if (r.pos + 1 + intSize > r.buf.length) throw new NeedMore();
  const sign = r.buf[r.pos++];
  let v = 0;
  for (let i = 0; i < intSize; i++) v += r.buf[r.pos++] * 2 ** (8 * i);
  return sign ? -v : v;
}

function str(r: Reader, intSize: number): string | null {
  const len = int(r, intSize);
  if (len < 0) return null;
  if (r.pos + len > r.buf.length) throw new NeedMore();
  const s = r.buf.toString('utf8', r.pos, r.pos + len);
  r.pos += len;
  return s;
}

class Unsupported extends Error {}

/** Parses header and TOC; returns where the data starts. */
function parseHead(buf: Buffer): { end: number; intSize: number; toc: Map<number, TocEntry> } {
  const r: Reader = { buf, pos: 0 };
  if (buf.length < 11) throw new NeedMore();
  if (buf.toString('latin1', 0, 5) !== 'PGDMP') throw new Unsupported('not a custom-format archive');
  r.pos = 5;
  const vmaj = byte(r);
  const vmin = byte(r);
  byte(r); // revision
  const intSize = byte(r);
  const offSize = byte(r);
  const format = byte(r);
  if (vmaj !== 1 || (vmin !== 14 && vmin !== 15)) throw new Unsupported(`archive version 1.${vmin}`);
  if (format !== 1) throw new Unsupported('not the custom format');
  if (intSize < 1 || intSize > 6 || offSize < 1 || offSize > 16) throw new Unsupported('unexpected integer sizes');
  if (vmin >= 15) {
    if (byte(r) !== 0) throw new Unsupported('compressed archive');
  } else if (int(r, intSize) !== 0) throw new Unsupported('compressed archive');
  for (let i = 0; i < 7; i++) int(r, intSize); // creation date
  str(r, intSize); // database
  str(r, intSize); // server version
  str(r, intSize); // pg_dump version
  const count = int(r, intSize);
  const toc = new Map<number, TocEntry>();
  for (let i = 0; i < count; i++) {
    const dumpId = int(r, intSize);
    int(r, intSize); // had dumper
    str(r, intSize); // table oid
    str(r, intSize); // oid
    str(r, intSize); // tag
    const desc = str(r, intSize) ?? '';
    int(r, intSize); // section
    str(r, intSize); // definition
    str(r, intSize); // drop statement
    const copyStmt = str(r, intSize);
    str(r, intSize); // namespace
    str(r, intSize); // tablespace
    str(r, intSize); // table access method
    str(r, intSize); // owner
    str(r, intSize); // "false" (with oids)
    while (str(r, intSize) !== null); // dependencies
    byte(r); // data offset flag
    if (r.pos + offSize > buf.length) throw new NeedMore();
    r.pos += offSize;
    toc.set(dumpId, { desc, copyStmt });
  }
  return { end: r.pos, intSize, toc };
}

/** Index of the sort key column in a `COPY tbl (a, b, …) FROM stdin;` statement, or -1. */
export function keyColumn(copyStmt: string | null): number {
  const m = copyStmt ? /\(([^)]*)\)\s+FROM\s+stdin/i.exec(copyStmt) : null;
  if (!m) return -1;
  const cols = m[1].split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
  const i = cols.indexOf('item_id');
  return i >= 0 ? i : cols.indexOf('id');
}

function field(line: Buffer, index: number): string | null {
  let start = 0;
  for (let i = 0; i < index; i++) {
    const tab = line.indexOf(9, start);
    if (tab < 0) return null;
    start = tab + 1;
  }
  const tab = line.indexOf(9, start);
  return line.toString('latin1', start, tab < 0 ? line.length - 1 : tab);
}

/** Integers compare numerically (as text, so any size), everything else after them as text. */
function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const ia = /^-?\d+$/.test(a);
  const ib = /^-?\d+$/.test(b);
  if (ia !== ib) return ia ? -1 : 1;
  if (!ia) return a < b ? -1 : 1;
  const na = a.startsWith('-');
  const nb = b.startsWith('-');
  if (na !== nb) return na ? -1 : 1;
  const c = a.length !== b.length ? a.length - b.length : a < b ? -1 : 1;
  return na ? -c : c;
}

/** Where a table's rows are grouped: the column naming a row's group, through `via` when given (item → container). */
export interface RowGroup {
  column: string;
  via?: Map<string, string>;
}

/** The columns of a `COPY tbl (a, b, …) FROM stdin;` statement, and its table as `schema.table`. */
export function copyTarget(copyStmt: string | null): { table: string; columns: string[] } | null {
  const m = copyStmt ? /^COPY\s+(\S+)\s+\(([^)]*)\)\s+FROM\s+stdin/i.exec(copyStmt) : null;
  if (!m) return null;
  return { table: m[1].replace(/"/g, ''), columns: m[2].split(',').map((c) => c.trim().replace(/^"|"$/g, '')) };
}

/** Integers compare numerically (as text, so any size), everything else after them, then whole rows bytewise. */
function compareRows(key: number) {
  const keys = new Map<Buffer, string | null>();
  const k = (b: Buffer) => {
    let v = keys.get(b);
    if (v === undefined) keys.set(b, (v = key >= 0 ? field(b, key) : null));
    return v;
  };
  const isInt = (s: string | null): s is string => s !== null && /^-?\d+$/.test(s);
  return (a: Buffer, b: Buffer): number => {
    const ka = k(a);
    const kb = k(b);
    if (isInt(ka) && isInt(kb) && ka !== kb) {
      const na = ka.startsWith('-');
      const nb = kb.startsWith('-');
      if (na !== nb) return na ? -1 : 1;
      const c = ka.length !== kb.length ? ka.length - kb.length : ka < kb ? -1 : 1;
      return na ? -c : c;
    }
    return Buffer.compare(a, b);
  };
}

const TERMINATOR = Buffer.from('\\.\n\n\n');

export interface OrderStats {
  tablesSorted: number;
  rowsSorted: number;
  /** Why the rewrite stopped and passed the rest through, if it did. */
  passthrough?: string;
}

/** A Transform from pg_dump's custom-format output to the same archive with each table's rows in key order. */
export class DumpRowOrder extends Transform {
  readonly stats: OrderStats = { tablesSorted: 0, rowsSorted: 0 };
  private pending: Buffer = Buffer.alloc(0);
  private state: 'head' | 'data' | 'through' = 'head';
  private intSize = 4;
  private toc = new Map<number, TocEntry>();

  /**
   * Per grouped table (`schema.table`), per group in output order, where its rows lie in the output:
   * [offset, length]; rows of no group are the group ''.
   */
  readonly ranges = new Map<string, Map<string, [number, number]>>();
  /** Grouped tables whose rows were left as dumped (no ranges for them). */
  readonly ungrouped: string[] = [];

  /** The archive's integer size (row framing), known once the header is read. */
  get integerSize(): number {
    return this.intSize;
  }
  private outBytes = 0;

  constructor(
    private readonly maxTableBytes = 256 * 1024 * 1024,
    private readonly groups?: Map<string, RowGroup>,
  ) {
    super();
  }

  private out(b: Buffer): void {
    this.outBytes += b.length;
    this.push(b);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      if (this.state === 'through') {
        this.out(chunk);
        return done();
      }
      this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
      this.advance();
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    // An incomplete archive (pg_dump failed) goes on as it came; the tool's exit status reports the failure.
    if (this.blk) {
      const b = this.blk;
      this.blk = null;
      const out: Buffer[] = [b.header];
      for (const c of b.chunks) out.push(this.intBytes(c.length), c);
      this.out(Buffer.concat(out));
    }
    if (this.pending.length) this.out(this.pending);
    this.pending = Buffer.alloc(0);
    done();
  }

  private through(reason: string): void {
    this.stats.passthrough = reason;
    this.state = 'through';
    if (this.pending.length) this.out(this.pending);
    this.pending = Buffer.alloc(0);
  }

  /** The data block being read: its header bytes, its entry, and its chunks so far. */
  private blk: { header: Buffer; entry: TocEntry; chunks: Buffer[]; size: number } | null = null;

  private advance(): void {
    if (this.state === 'head') {
      try {
        const h = parseHead(this.pending);
        this.intSize = h.intSize;
        this.toc = h.toc;
        this.out(this.pending.subarray(0, h.end));
        this.pending = this.pending.subarray(h.end);
        this.state = 'data';
      } catch (e) {
        if (e instanceof NeedMore) {
          if (this.pending.length > 64 * 1024 * 1024) this.through('table of contents larger than 64 MiB');
          return;
        }
        if (e instanceof Unsupported) return this.through(e.message);
        throw e;
      }
    }
    // Consume whole framing units (block header, one chunk) as they complete: linear in the input.
    const buf = this.pending;
    let off = 0;
    const n = this.intSize;
    while (this.state === 'data') {
      if (!this.blk) {
        if (buf.length - off < 2 + n) break;
        const r: Reader = { buf, pos: off };
        const type = byte(r);
        if (type !== BLK_DATA) {
          this.pending = buf.subarray(off);
          return this.through(`block type ${type}`);
        }
        const entry = this.toc.get(int(r, n));
        if (!entry || entry.desc !== 'TABLE DATA') {
          this.pending = buf.subarray(off);
          return this.through('data block of an unknown entry');
        }
        this.blk = { header: Buffer.from(buf.subarray(off, r.pos)), entry, chunks: [], size: 0 };
        off = r.pos;
        continue;
      }
      if (buf.length - off < 1 + n) break;
      const r: Reader = { buf, pos: off };
      const len = int(r, n);
      if (len === 0) {
        off = r.pos;
        this.finishBlock();
        continue;
      }
      if (len < 0) {
        this.pending = buf.subarray(off);
        return this.unwind('negative chunk length');
      }
      if (buf.length - r.pos < len) break;
      this.blk.chunks.push(buf.subarray(r.pos, r.pos + len));
      this.blk.size += len;
      off = r.pos + len;
      if (this.blk.size > this.maxTableBytes) {
        this.pending = buf.subarray(off);
        return this.unwind(`a table larger than ${this.maxTableBytes} bytes`);
      }
    }
    this.pending = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
  }

  /** Emits the block read so far as it came, then passes everything else through. */
  private unwind(reason: string): void {
    const b = this.blk!;
    this.blk = null;
    const out: Buffer[] = [b.header];
    for (const c of b.chunks) out.push(this.intBytes(c.length), c);
    this.out(Buffer.concat(out));
    this.through(reason);
  }

  private finishBlock(): void {
    const b = this.blk!;
    this.blk = null;
    // Rows end with a newline (COPY escapes newlines inside values); the data ends with the terminator.
    const all = Buffer.concat(b.chunks);
    const rows: Buffer[] = [];
    let ok = all.length >= TERMINATOR.length && all.subarray(all.length - TERMINATOR.length).equals(TERMINATOR);
    const end = all.length - TERMINATOR.length;
    for (let start = 0; ok && start < end; ) {
      const nl = all.indexOf(10, start);
      if (nl < 0 || nl >= end) ok = false;
      else {
        rows.push(all.subarray(start, nl + 1));
        start = nl + 1;
      }
    }
    const out: Buffer[] = [b.header];
    if (!ok) {
      // Not the shape pg_dump writes for COPY data: leave this block as it was.
      const target = copyTarget(b.entry.copyStmt);
      if (target && this.groups?.has(target.table)) this.ungrouped.push(target.table);
      for (const c of b.chunks) out.push(this.intBytes(c.length), c);
    } else {
      const target = copyTarget(b.entry.copyStmt);
      const grouping = target && this.groups?.get(target.table);
      const gcol = grouping ? target.columns.indexOf(grouping.column) : -1;
      if (grouping && gcol >= 0) {
        // Rows by group, then by key; each group's rows recorded where they land.
        const groupOf = new Map<Buffer, string>();
        for (const row of rows) {
          const v = field(row, gcol);
          groupOf.set(row, (v !== null && (grouping.via ? grouping.via.get(v) : v)) || '');
        }
        const byKey = compareRows(keyColumn(b.entry.copyStmt));
        rows.sort((x, y) => compareKeys(groupOf.get(x)!, groupOf.get(y)!) || byKey(x, y));
        const ranges = new Map<string, [number, number]>();
        this.ranges.set(target.table, ranges);
        let at = this.outBytes + b.header.length;
        for (const row of rows) {
          const g = groupOf.get(row)!;
          const n = 1 + this.intSize + row.length;
          // Rows of no group ('') too: the ranges, in output order, cover the whole table.
          const r = ranges.get(g);
          if (r) r[1] += n;
          else ranges.set(g, [at, n]);
          at += n;
        }
      } else rows.sort(compareRows(keyColumn(b.entry.copyStmt)));
      for (const row of rows) out.push(this.intBytes(row.length), row);
      out.push(this.intBytes(TERMINATOR.length), TERMINATOR);
      this.stats.tablesSorted++;
      this.stats.rowsSorted += rows.length;
    }
    out.push(this.intBytes(0));
    this.out(Buffer.concat(out));
  }

  private intBytes(v: number): Buffer {
    const b = Buffer.alloc(1 + this.intSize);
    b[0] = v < 0 ? 1 : 0;
    let x = Math.abs(v);
    for (let i = 0; i < this.intSize; i++) {
      b[1 + i] = x % 256;
      x = Math.floor(x / 256);
    }
    return b;
  }
}
