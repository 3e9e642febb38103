/**
 * Cut points of a MIME message: where its base64 part bodies begin and end. The file chunker makes a small
 * file one blob; a message is cut here instead, so that an attachment sent in several messages (forwarded,
 * sent to several users with other headers, answered with its attachment) is one blob stored once: the
 * same file base64-encoded by the same mailer is the same bytes whatever the headers around it.
 *
 * The cuts depend on the bytes alone, so they are as deterministic as content-defined ones; a restore
 * concatenates the blobs and never needs them.
 */

/** Bodies shorter than this stay with the text around them: a blob costs index and tree space. */
export const MIN_MIME_BODY = 4096;

const HEADER = Buffer.from('content-transfer-encoding:', 'latin1');
const BASE64 = Buffer.from('base64', 'latin1');
const SPELLINGS = ['ransfer-encoding:', 'RANSFER-ENCODING:', 'ransfer-Encoding:'].map((w) => Buffer.from(w, 'latin1'));
/**
 * Spellings are searched this many bytes ahead at a time: a spelling a message does not use is then not
 * searched through its base64 bodies, which are skipped (most of a message with an attachment).
 */
const SEARCH_AHEAD = 16 * 1024;
const LF = 0x0a;
const CR = 0x0d;

/**
 * End offsets of the pieces of `src` (the last one is `src.length`), or `[src.length]` when it holds no
 * base64 body of at least `minBody` bytes. A body runs from the line after its part's blank line to the
 * start of the next line that begins with "--" (the boundary), or to the end of the file.
 */
export function mimeCuts(src: Uint8Array, minBody = MIN_MIME_BODY): number[] {
  const buf = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  const cuts: number[] = [];
  let last = 0;
  let from = 0;
  const next: Search = { at: SPELLINGS.map(() => -1), upTo: SPELLINGS.map(() => 0) };
  for (;;) {
    const at = findHeader(buf, from, next);
    if (at < 0) break;
    from = at + HEADER.length;
    if (!isBase64Value(buf, from)) continue;
    const body = bodyStart(buf, from);
    if (body < 0) break;
    const end = bodyEnd(buf, body);
    from = end;
    if (end - body < minBody) continue;
    if (body > last) cuts.push(body);
    cuts.push(end);
    last = end;
  }
  if (cuts.at(-1) !== buf.length) cuts.push(buf.length);
  return cuts;
}

/**
 * Per spelling, what is known of its next place: `at[k]` where it is (from some offset up to the one asked
 * for), or -1 when it does not start before `upTo[k]`. Kept between headers, so that no byte is searched
 * twice for the same spelling.
 */
interface Search {
  at: number[];
  upTo: number[];
}

/** The next "Content-Transfer-Encoding:" at a line start, in any case (a header name is case-insensitive). */
function findHeader(buf: Buffer, from: number, next: Search): number {
  for (let i = from; i < buf.length; ) {
    // Searching for the lower-case tail and the upper-case tail covers the spellings mailers use.
    const hit = nextSpelling(buf, i, next) - 'content-t'.length;
    if (hit < -'content-t'.length) return -1;
    i = hit + HEADER.length;
    if (hit < 0 || (hit > 0 && buf[hit - 1] !== LF)) continue;
    if (equalsIgnoreCase(buf, hit, HEADER)) return hit;
  }
  return -1;
}

/** The first place at or after `i` where any spelling starts, or -1; searched SEARCH_AHEAD bytes at a time. */
function nextSpelling(buf: Buffer, i: number, s: Search): number {
  for (let limit = i; limit < buf.length; ) {
    limit = Math.min(buf.length, limit + SEARCH_AHEAD);
    let best = -1;
    for (let k = 0; k < SPELLINGS.length; k++) {
      if (s.at[k] >= 0 && s.at[k] < i) {
        s.at[k] = -1;
        s.upTo[k] = i;
      }
      if (s.at[k] < 0 && s.upTo[k] < limit) {
        // Only places that start before `limit`: the search ends there, the word included.
        const end = Math.min(buf.length, limit + SPELLINGS[k].length - 1);
        const at = buf.subarray(0, end).indexOf(SPELLINGS[k], Math.max(i, s.upTo[k]));
        if (at >= 0) s.at[k] = at;
        else s.upTo[k] = limit;
      }
      if (s.at[k] >= 0 && s.at[k] < limit && (best < 0 || s.at[k] < best)) best = s.at[k];
    }
    if (best >= 0) return best;
  }
  return -1;
}

function equalsIgnoreCase(buf: Buffer, at: number, word: Buffer): boolean {
  if (at + word.length > buf.length) return false;
  for (let k = 0; k < word.length; k++) {
    let ch = buf[at + k];
    if (ch >= 0x41 && ch <= 0x5a) ch += 0x20;
    if (ch !== word[k]) return false;
  }
  return true;
}

/** After the header name: optional blanks, "base64" in any case, then the end of the line (or a blank). */
function isBase64Value(buf: Buffer, at: number): boolean {
  let i = at;
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
  if (!equalsIgnoreCase(buf, i, BASE64)) return false;
  const next = buf[i + BASE64.length];
  return next === undefined || next === CR || next === LF || next === 0x20 || next === 0x09 || next === 0x3b;
}

/** The offset just after the blank line that ends the part's headers, or -1. */
function bodyStart(buf: Buffer, from: number): number {
  for (let i = buf.indexOf(LF, from); i >= 0 && i < buf.length; i = buf.indexOf(LF, i + 1)) {
    const next = i + 1;
    if (buf[next] === LF) return next + 1;
    if (buf[next] === CR && buf[next + 1] === LF) return next + 2;
  }
  return -1;
}

/** The start of the first line from `body` on that begins with "--", or the end of the file. */
function bodyEnd(buf: Buffer, body: number): number {
  if (buf[body] === 0x2d && buf[body + 1] === 0x2d) return body;
  const i = buf.indexOf('\n--', body, 'latin1');
  return i < 0 ? buf.length : i + 1;
}
