// A POSIX tar writer (ustar headers, pax extended headers where ustar falls short): long paths and link targets,
// files of 8 GiB and more, large ids and nanosecond mtimes survive, so GNU tar, bsdtar and a tape system's own
// reader unpack what a restore would have written.

import type { Readable, Writable } from 'node:stream';

const BLOCK = 512;
const USTAR_MAX_SIZE = 0o77777777777; // 11 octal digits
const USTAR_MAX_ID = 0o7777777;

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'dir';

export interface TarEntry {
  /** Relative path, `/`-separated; a directory's gets its trailing `/` here. */
  path: string;
  type: TarEntryType;
  /** Permission and set-id/sticky bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch, decimal (as the engine's trees keep them). */
  mtimeNs: string;
  /** Files only. */
  size?: number;
  /** Symlink target, or the path of the earlier entry a hard link names. */
  linkTarget?: string;
}

const TYPEFLAG: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', dir: '5' };

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as ustar writes numbers.
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** `"%d key=value\n"`, where the length counts itself. */
export function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return Buffer.from(`${len}${body}`);
}

/** Seconds, with the nanoseconds as a fraction when there are any: `1700000000.123456789`. */
export function paxTime(ns: string): string {
  const v = BigInt(ns);
  const neg = v < 0n;
  const abs = neg ? -v : v;
  const s = abs / 1_000_000_000n;
  const frac = abs % 1_000_000_000n;
  const text = frac === 0n ? `${s}` : `${s}.${frac.toString().padStart(9, '0').replace(/0+$/, '')}`;
  return neg ? `-${text}` : text;
}

function header(fields: { name: string; mode: number; uid: number; gid: number; size: number; mtime: number; typeflag: string; linkname: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(fields.name, 0, 100, 'utf8');
  b.write(octal(fields.mode & 0o7777, 8), 100, 8, 'ascii');
  b.write(octal(fields.uid, 8), 108, 8, 'ascii');
  b.write(octal(fields.gid, 8), 116, 8, 'ascii');
  b.write(octal(fields.size, 12), 124, 12, 'ascii');
  b.write(octal(fields.mtime, 12), 136, 12, 'ascii');
  b.write('        ', 148, 8, 'ascii');
  b.write(fields.typeflag, 156, 1, 'ascii');
  b.write(fields.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'ascii');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

/** The longest prefix of `s` that is at most `max` bytes of UTF-8 (a fallback name for readers without pax). */
function clip(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}

const ASCII = /^[\x20-\x7e]*$/;

/** The blocks in front of an entry's data: a pax header when ustar cannot say it all, then the ustar header. */
export function entryHeader(e: TarEntry): Buffer {
  const size = e.type === 'file' ? (e.size ?? 0) : 0;
  const ns = BigInt(e.mtimeNs);
  const seconds = ns >= 0n ? ns / 1_000_000_000n : 0n;
  const pax: Buffer[] = [];
  const name = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
  const linkname = e.linkTarget ?? '';
  if (Buffer.byteLength(name) > 100 || !ASCII.test(name)) pax.push(paxRecord('path', name));
  if (Buffer.byteLength(linkname) > 100 || !ASCII.test(linkname)) pax.push(paxRecord('linkpath', linkname));
  if (size > USTAR_MAX_SIZE) pax.push(paxRecord('size', String(size)));
  if (e.uid > USTAR_MAX_ID) pax.push(paxRecord('uid', String(e.uid)));
  if (e.gid > USTAR_MAX_ID) pax.push(paxRecord('gid', String(e.gid)));
  if (ns % 1_000_000_000n !== 0n || ns < 0n || seconds > BigInt(0o77777777777)) pax.push(paxRecord('mtime', paxTime(e.mtimeNs)));
  const main = header({
    name: clip(name, 100), mode: e.mode, uid: Math.min(e.uid, USTAR_MAX_ID), gid: Math.min(e.gid, USTAR_MAX_ID),
    size: size > USTAR_MAX_SIZE ? 0 : size, mtime: Number(seconds > BigInt(0o77777777777) ? 0n : seconds),
    typeflag: TYPEFLAG[e.type], linkname: clip(linkname, 100),
  });
  if (pax.length === 0) return main;
  const records = Buffer.concat(pax);
  const base = name.replace(/\/$/, '').split('/').pop() ?? '';
  const paxHeader = header({
    name: clip(`PaxHeaders/${base}`, 100), mode: 0o644, uid: 0, gid: 0, size: records.length,
    mtime: Number(seconds > BigInt(0o77777777777) ? 0n : seconds), typeflag: 'x', linkname: '',
  });
  return Buffer.concat([paxHeader, records, padding(records.length), main]);
}

function padding(length: number): Buffer {
  const rest = length % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** Writes entries one after another into a stream, waiting when the stream is full. */
export class TarWriter {
  private failed: Error | null = null;

  constructor(private readonly out: Writable) {
    out.on('error', (e) => (this.failed ??= e));
  }

  private async write(chunk: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.out.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => (this.out.off('error', onError), resolve());
        const onError = (e: Error) => (this.out.off('drain', onDrain), reject(e));
        this.out.once('drain', onDrain);
        this.out.once('error', onError);
      });
    }
  }

  /** One entry; a file's content must be exactly `size` bytes. */
  async add(e: TarEntry, content?: Readable): Promise<void> {
    await this.write(entryHeader(e));
    if (e.type !== 'file') return;
    const size = e.size ?? 0;
    let written = 0;
    if (content) {
      for await (const chunk of content as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (written > size) throw new Error(`${e.path}: content longer than the ${size} bytes announced`);
        await this.write(chunk);
      }
    }
    if (written !== size) throw new Error(`${e.path}: content is ${written} bytes, ${size} were announced`);
    await this.write(padding(size));
  }

  /** The two zero blocks that end an archive. */
  async end(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
  }
}
