import type { ChunkerParams } from './format.js';
import { mimeCuts } from './mime-cuts.js';

/** FastCDC gear table from a seed (the repository's `gearSeed`): fixed forever, it defines dedup identity. */
export function gearTable(seed: number): Int32Array {
  const gear = new Int32Array(256);
  let s = seed | 0;
  for (let i = 0; i < 256; i++) {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    gear[i] = t ^ (t >>> 14);
  }
  return gear;
}

/**
 * FastCDC (gear hash, normalised chunking level 1, minimum skipped without hashing).
 * Writes chunk end offsets (relative to `src`) into `out` and returns how many. One monomorphic loop:
 * the shape matters to V8 (~1 GB/s here).
 */
export function cutsInto(gear: Int32Array, src: Uint8Array, p: ChunkerParams, out: number[]): void {
  const { min, avg, max } = p;
  const bits = Math.round(Math.log2(avg));
  const maskS = (-1 << (31 - bits)) | 0;
  const maskL = (-1 << (33 - bits)) | 0;
  const len = src.length;
  let start = 0;
  while (start < len) {
    let n = len - start;
    let cut = len;
    if (n > min) {
      if (n > max) n = max;
      const normal = start + (n < avg ? n : avg);
      const limit = start + n;
      let h = 0;
      let i = start + min;
      cut = limit;
      for (; i < normal; i++) {
        h = ((h << 1) + gear[src[i]]) | 0;
        if ((h & maskS) === 0) {
          cut = i + 1;
          break;
        }
      }
      if (cut === limit) {
        for (; i < limit; i++) {
          h = ((h << 1) + gear[src[i]]) | 0;
          if ((h & maskL) === 0) {
            cut = i + 1;
            break;
          }
        }
      }
    }
    out.push(cut);
    start = cut;
  }
}

/**
 * Where a file read whole (one below `p.max`) is cut: at its MIME bodies when it is a message with base64
 * parts (mime-cuts.ts), else as one blob below `p.min` and by FastCDC above, as a file read window by window
 * is. `mime: false` gives the cuts of versions that did not know MIME (a generation written by them).
 */
export function fileCuts(gear: Int32Array, data: Uint8Array, p: ChunkerParams, mime = true): number[] {
  if (data.length === 0) return [];
  const cuts = mime ? mimeCuts(data) : [data.length];
  if (cuts.length > 1 || data.length < p.min) return cuts;
  const out: number[] = [];
  cutsInto(gear, data, p, out);
  return out;
}

/**
 * Cuts a stream that arrives in pieces into the same chunks as `cutsInto` over the whole content:
 * a cut is final when it was found by the hash or forced by `max`; the tail after the last final
 * cut waits for more bytes.
 */
export class StreamChunker {
  /** Bytes received and not yet cut; only concatenated once there is enough for a final cut. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private readonly cuts: number[] = [];

  constructor(
    private readonly gear: Int32Array,
    private readonly params: ChunkerParams,
  ) {}

  /** Chunks completed by this piece; they are views into an internal buffer, valid until the next call. */
  push(piece: Uint8Array): Buffer[] {
    if (piece.byteLength === 0) return [];
    // Copy: the caller may reuse `piece` (a read buffer) after this returns.
    this.pending.push(Buffer.from(piece));
    this.pendingLength += piece.byteLength;
    if (this.pendingLength < this.params.max) return [];
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLength);
    this.cuts.length = 0;
    cutsInto(this.gear, data, this.params, this.cuts);
    const chunks: Buffer[] = [];
    let start = 0;
    for (const cut of this.cuts) {
      const final = cut < data.length || cut - start === this.params.max;
      if (!final) break;
      chunks.push(data.subarray(start, cut));
      start = cut;
    }
    const tail = data.subarray(start);
    this.pending = tail.length ? [Buffer.from(tail)] : [];
    this.pendingLength = tail.length;
    return chunks;
  }

  /** The last chunks once the stream has ended. */
  end(): Buffer[] {
    const data = Buffer.concat(this.pending, this.pendingLength);
    this.pending = [];
    this.pendingLength = 0;
    if (data.length === 0) return [];
    this.cuts.length = 0;
    cutsInto(this.gear, data, this.params, this.cuts);
    const chunks: Buffer[] = [];
    let start = 0;
    for (const cut of this.cuts) {
      chunks.push(data.subarray(start, cut));
      start = cut;
    }
    return chunks;
  }
}
