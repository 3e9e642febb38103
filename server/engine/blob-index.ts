import { ID_BYTES } from './hash.js';

export enum BlobType {
  Data = 0,
  Tree = 1,
}

export interface BlobLocation {
  pack: string;
  type: BlobType;
  /** True when the stored bytes are zstd. */
  zstd: boolean;
  /** The dictionary the zstd frame was made with (compression 2, version 3): the id of its blob, hex. */
  dictionary?: string;
  offset: number;
  /** Bytes in the pack. */
  length: number;
  /** Bytes once decompressed. */
  rawLength: number;
}

/** A blob's compression code as an index file and a pack header store it: 0 raw, 1 zstd, 2 zstd with a dictionary. */
export function compressionCode(e: { zstd: boolean; dictionary?: string }): number {
  return e.dictionary !== undefined ? 2 : e.zstd ? 1 : 0;
}

/** Entries per chunk of the entry arrays (a power of two: entry i is at chunk i >> CHUNK_BITS). */
const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;

/**
 * Bytes of one blob's record, the same as in an index file (FORMAT.md): id (32), type u8, compression u8
 * (1: zstd), offset, stored length and raw length (u32 LE). An index file's records are copied in whole.
 */
export const RECORD_BYTES = ID_BYTES + 2 + 12;
const TYPE_AT = ID_BYTES;
const ZSTD_AT = ID_BYTES + 1;
const OFFSET_AT = ID_BYTES + 2;
const LENGTH_AT = ID_BYTES + 6;
const RAW_AT = ID_BYTES + 10;

/** One chunk of entries, in the order they were added: their records, and the ordinal of each one's pack. */
interface Chunk {
  records: Uint8Array;
  packs: Uint32Array;
}

/**
 * Blob id -> location, for every blob of the repository, over typed arrays only (ids never become strings),
 * so that a spool of tens of millions of messages fits (see README, "bytes per blob").
 *
 * Entries are dense, in the order blobs were added: the blob's 46-byte record as an index file holds it and
 * a 4-byte pack ordinal (50 bytes a blob), in chunks of 16,384 so that growing never copies them; loading
 * an index file copies its records in whole. The hash table beside them holds only a 4-byte entry number
 * and a 1-byte tag per slot (open addressing, linear probing, load at most 0.8), so that its empty slots
 * cost 5 bytes each instead of a whole entry: about 58 bytes a blob at 10 million. Ids are SHA-256 (or an
 * HMAC of it), so their first 4 bytes are a uniform hash already.
 */
export class BlobIndex {
  private mask: number;
  /** Entry number + 1 per slot; 0 is an empty slot. */
  private slots: Uint32Array;
  /** Byte 4 of each slot's id: most probes that miss are told apart here, without a read of the entry. */
  private tags: Uint8Array;
  private readonly chunks: Chunk[] = [];
  private count = 0;
  /** Pack ids by ordinal; the entries store ordinals. */
  readonly packs: string[] = [];
  private readonly packOrdinal = new Map<string, number>();
  /** The dictionary of a pack (by ordinal) whose blobs of compression 2 use one; few packs have one. */
  private readonly packDictionaries = new Map<number, string>();

  constructor(expected = 1024) {
    let cap = 1024;
    while (cap * 0.8 < expected) cap *= 2;
    this.mask = cap - 1;
    this.slots = new Uint32Array(cap);
    this.tags = new Uint8Array(cap);
  }

  get size(): number {
    return this.count;
  }

  /** Memory held by the table, for the README's measured bytes-per-blob figure. */
  get byteSize(): number {
    let bytes = this.slots.byteLength + this.tags.byteLength;
    for (const c of this.chunks) bytes += c.records.byteLength + c.packs.byteLength;
    return bytes;
  }

  has(id: Uint8Array): boolean {
    return this.find(id, 0) >= 0;
  }

  get(id: Uint8Array): BlobLocation | undefined {
    const e = this.find(id, 0);
    return e < 0 ? undefined : this.location(e);
  }

  /** A blob's raw length alone, or -1 when it is not here: as `get`, without making its location. */
  rawLength(id: Uint8Array): number {
    const e = this.find(id, 0);
    return e < 0 ? -1 : u32(this.chunks[e >>> CHUNK_BITS].records, (e & (CHUNK - 1)) * RECORD_BYTES + RAW_AT);
  }

  /** Adds a blob; a blob already present keeps its first location (duplicates are the prune's business). */
  add(id: Uint8Array, loc: BlobLocation): boolean {
    if (this.find(id, 0) >= 0) return false;
    const c = this.room(1);
    const i = this.count & (CHUNK - 1);
    c.records.set(id.subarray(0, ID_BYTES), i * RECORD_BYTES);
    this.setLocation(c, i, this.ordinalOf(loc.pack, loc.dictionary), loc);
    this.append();
    return true;
  }

  /**
   * Adds the `count` blobs of `pack` whose records start at `at` in `bytes`, laid out as in an index file
   * (RECORD_BYTES each): copied a chunk's worth at a time, nothing allocated per blob. A blob already
   * present keeps its first location. Returns how many were new.
   */
  addRecords(bytes: Uint8Array, at: number, count: number, pack: string, dictionary?: string): number {
    const ordinal = this.ordinalOf(pack, dictionary);
    let added = 0;
    for (let done = 0; done < count; ) {
      const c = this.room(count - done);
      const i = this.count & (CHUNK - 1);
      const n = Math.min(count - done, c.packs.length - i);
      while (this.count + n > (this.mask + 1) * 0.8) this.grow();
      const from = at + done * RECORD_BYTES;
      const records = c.records;
      records.set(bytes.subarray(from, from + n * RECORD_BYTES), i * RECORD_BYTES);
      c.packs.fill(ordinal, i, i + n);
      // One probe both looks for the id and, when it is new, takes the empty slot it ends on. Written out here,
      // not called: a restore loads the index once, cold, and V8 interprets this loop for thousands of blobs
      // before it compiles it, paying for every call.
      const { slots, tags, mask } = this;
      let w = i;
      for (let r = i; r < i + n; r++) {
        const ra = r * RECORD_BYTES;
        let s = ((records[ra] << 24) | (records[ra + 1] << 16) | (records[ra + 2] << 8) | records[ra + 3]) & mask;
        const tag = records[ra + 4];
        let known = false;
        for (let x = slots[s]; x !== 0; x = slots[s]) {
          if (tags[s] === tag && this.sameId(x - 1, records, ra)) {
            known = true;
            break;
          }
          s = (s + 1) & mask;
        }
        // A blob already indexed keeps its first location; each new one moves down over those dropped before it.
        if (known) continue;
        if (r !== w) records.copyWithin(w * RECORD_BYTES, ra, ra + RECORD_BYTES);
        slots[s] = this.count + 1;
        tags[s] = tag;
        this.count++;
        w++;
      }
      added += w - i;
      done += n;
    }
    return added;
  }

  /** The pack a blob is located in, without building a whole location. */
  packOf(id: Uint8Array): string | undefined {
    const e = this.find(id, 0);
    return e < 0 ? undefined : this.packs[this.chunks[e >>> CHUNK_BITS].packs[e & (CHUNK - 1)]];
  }

  /** Moves a blob already present to another location. */
  replace(id: Uint8Array, loc: BlobLocation): void {
    const e = this.find(id, 0);
    if (e < 0) throw new Error('replace: blob not in the index');
    this.setLocation(this.chunks[e >>> CHUNK_BITS], e & (CHUNK - 1), this.ordinalOf(loc.pack, loc.dictionary), loc);
  }

  hasPack(pack: string): boolean {
    return this.packOrdinal.has(pack);
  }

  /** The dictionary of a pack's blobs of compression 2, if it has one. */
  packDictionary(pack: string): string | undefined {
    const o = this.packOrdinal.get(pack);
    return o === undefined ? undefined : this.packDictionaries.get(o);
  }

  /** Every dictionary some pack names. */
  dictionaries(): Set<string> {
    return new Set(this.packDictionaries.values());
  }

  /** Every blob, in the order they were added. */
  *entries(): IterableIterator<[Buffer, BlobLocation]> {
    for (let e = 0; e < this.count; e++) {
      const at = (e & (CHUNK - 1)) * RECORD_BYTES;
      const id = Buffer.from(this.chunks[e >>> CHUNK_BITS].records.subarray(at, at + ID_BYTES));
      yield [id, this.location(e)];
    }
  }

  /**
   * Every entry's number in the order of ids (the index cache's layout, index-cache.ts), and where each of the
   * 2^bits buckets of ids (by their first `bits` bits) starts in it: entries are counted into buckets, then each
   * bucket (a few dozen entries) is sorted, so that millions sort in linear time, not n log n comparisons.
   */
  sortedEntries(bits: number): { order: Uint32Array; starts: Uint32Array } {
    const buckets = 2 ** bits;
    const starts = new Uint32Array(buckets + 1);
    const bucketOf = new Uint32Array(this.count);
    for (let e = 0; e < this.count; e++) {
      const r = this.chunks[e >>> CHUNK_BITS].records;
      // (A shift by 32 is a shift by 0 in JavaScript: one bucket is bucket 0.)
      const b = bits === 0 ? 0 : (hashAt(r, (e & (CHUNK - 1)) * RECORD_BYTES) >>> 0) >>> (32 - bits);
      bucketOf[e] = b;
      starts[b + 1]++;
    }
    for (let b = 0; b < buckets; b++) starts[b + 1] += starts[b];
    const next = starts.slice(0, buckets);
    const order = new Uint32Array(this.count);
    for (let e = 0; e < this.count; e++) order[next[bucketOf[e]]++] = e;
    const compare = (a: number, b: number): number => {
      const ra = this.chunks[a >>> CHUNK_BITS].records;
      const rb = this.chunks[b >>> CHUNK_BITS].records;
      const oa = (a & (CHUNK - 1)) * RECORD_BYTES;
      const ob = (b & (CHUNK - 1)) * RECORD_BYTES;
      for (let k = 0; k < ID_BYTES; k++) if (ra[oa + k] !== rb[ob + k]) return ra[oa + k] - rb[ob + k];
      return 0;
    };
    for (let b = 0; b < buckets; b++) if (starts[b + 1] - starts[b] > 1) order.subarray(starts[b], starts[b + 1]).sort(compare);
    return { order, starts };
  }

  /** Copies entry `e`'s record (RECORD_BYTES, as in an index file) to `out` at `at`; returns its pack's ordinal. */
  copyRecord(e: number, out: Uint8Array, at: number): number {
    const c = this.chunks[e >>> CHUNK_BITS];
    const i = e & (CHUNK - 1);
    out.set(c.records.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES), at);
    return c.packs[i];
  }

  /** The dictionary of the pack of this ordinal (see `packs`), if it has one. */
  dictionaryOfPack(ordinal: number): string | undefined {
    return this.packDictionaries.get(ordinal);
  }

  private location(e: number): BlobLocation {
    const c = this.chunks[e >>> CHUNK_BITS];
    const i = e & (CHUNK - 1);
    const r = c.records;
    const at = i * RECORD_BYTES;
    const code = r[at + ZSTD_AT];
    const dictionary = code === 2 ? this.packDictionaries.get(c.packs[i]) : undefined;
    return {
      pack: this.packs[c.packs[i]],
      type: r[at + TYPE_AT] === 1 ? BlobType.Tree : BlobType.Data,
      zstd: code === 1 || code === 2,
      ...(dictionary !== undefined ? { dictionary } : {}),
      offset: u32(r, at + OFFSET_AT),
      length: u32(r, at + LENGTH_AT),
      rawLength: u32(r, at + RAW_AT),
    };
  }

  private setLocation(c: Chunk, i: number, pack: number, loc: BlobLocation): void {
    const r = c.records;
    const at = i * RECORD_BYTES;
    r[at + TYPE_AT] = loc.type === BlobType.Tree ? 1 : 0;
    r[at + ZSTD_AT] = compressionCode(loc);
    putU32(r, at + OFFSET_AT, loc.offset);
    putU32(r, at + LENGTH_AT, loc.length);
    putU32(r, at + RAW_AT, loc.rawLength);
    c.packs[i] = pack;
  }

  /**
   * The chunk where the next entry goes, allocated when needed; `wanted` entries sizes a first chunk, which
   * starts small (a small repository) and doubles until it is whole.
   */
  private room(wanted: number): Chunk {
    const ci = this.count >>> CHUNK_BITS;
    const i = this.count & (CHUNK - 1);
    if (ci === this.chunks.length) {
      this.chunks.push(newChunk(ci === 0 ? Math.min(CHUNK, Math.max(1024, this.mask + 1, wanted)) : CHUNK));
    } else if (i >= this.chunks[ci].packs.length) {
      const old = this.chunks[ci];
      const c = newChunk(Math.min(CHUNK, Math.max(old.packs.length * 2, i + wanted)));
      c.records.set(old.records);
      c.packs.set(old.packs);
      this.chunks[ci] = c;
    }
    return this.chunks[ci];
  }

  /** Counts the entry whose record was just written at the end, and puts it in the hash table. */
  private append(): void {
    if (this.count + 1 > (this.mask + 1) * 0.8) this.grow();
    this.insert(this.count++);
  }

  /** Puts entry `e` (its record written) in the hash table. */
  private insert(e: number): void {
    const r = this.chunks[e >>> CHUNK_BITS].records;
    const at = (e & (CHUNK - 1)) * RECORD_BYTES;
    let s = hashAt(r, at) & this.mask;
    while (this.slots[s] !== 0) s = (s + 1) & this.mask;
    this.slots[s] = e + 1;
    this.tags[s] = r[at + 4];
  }

  /** Whether entry `e` has the id at `ids[at..]`. */
  private sameId(e: number, ids: Uint8Array, at: number): boolean {
    const r = this.chunks[e >>> CHUNK_BITS].records;
    const base = (e & (CHUNK - 1)) * RECORD_BYTES;
    for (let k = 0; k < ID_BYTES; k++) if (r[base + k] !== ids[at + k]) return false;
    return true;
  }

  private ordinalOf(pack: string, dictionary?: string): number {
    let o = this.packOrdinal.get(pack);
    if (o === undefined) {
      o = this.packs.length;
      this.packs.push(pack);
      this.packOrdinal.set(pack, o);
    }
    // A pack has one dictionary whatever lists it (the index file, its blobs).
    if (dictionary) this.packDictionaries.set(o, dictionary);
    return o;
  }

  /** The entry number of the id at `ids[at..]`, or -1. */
  private find(ids: Uint8Array, at: number): number {
    let s = hashAt(ids, at) & this.mask;
    const tag = ids[at + 4];
    for (;;) {
      const e = this.slots[s];
      if (e === 0) return -1;
      if (this.tags[s] === tag && this.sameId(e - 1, ids, at)) return e - 1;
      s = (s + 1) & this.mask;
    }
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.slots = new Uint32Array(cap);
    this.tags = new Uint8Array(cap);
    for (let e = 0; e < this.count; e++) this.insert(e);
  }
}

function newChunk(entries: number): Chunk {
  return { records: new Uint8Array(entries * RECORD_BYTES), packs: new Uint32Array(entries) };
}

/** A little-endian u32 (cheaper than Buffer#readUInt32LE's checks, and for any Uint8Array). */
function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

function hashAt(ids: Uint8Array, at: number): number {
  return (ids[at] << 24) | (ids[at + 1] << 16) | (ids[at + 2] << 8) | ids[at + 3];
}

/** A set of blob ids over one flat typed array (prune's "used" set, check's "seen" set). */
export class BlobIdSet {
  private capacity = 1024;
  private mask = 1023;
  private ids = new Uint8Array(1024 * ID_BYTES);
  private used = new Uint8Array(1024);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Returns false when the id was already there. */
  add(id: Uint8Array): boolean {
    if (this.count + 1 > this.capacity * 0.7) this.grow();
    let s = this.hash(id);
    while (this.used[s]) {
      if (this.equals(s, id)) return false;
      s = (s + 1) & this.mask;
    }
    this.ids.set(id.subarray(0, ID_BYTES), s * ID_BYTES);
    this.used[s] = 1;
    this.count++;
    return true;
  }

  has(id: Uint8Array): boolean {
    let s = this.hash(id);
    while (this.used[s]) {
      if (this.equals(s, id)) return true;
      s = (s + 1) & this.mask;
    }
    return false;
  }

  private hash(id: Uint8Array): number {
    return ((id[0] << 24) | (id[1] << 16) | (id[2] << 8) | id[3]) & this.mask;
  }

  private equals(s: number, id: Uint8Array): boolean {
    const base = s * ID_BYTES;
    for (let i = 0; i < ID_BYTES; i++) if (this.ids[base + i] !== id[i]) return false;
    return true;
  }

  private grow(): void {
    const oldIds = this.ids;
    const oldUsed = this.used;
    const oldCap = this.capacity;
    this.capacity *= 2;
    this.mask = this.capacity - 1;
    this.ids = new Uint8Array(this.capacity * ID_BYTES);
    this.used = new Uint8Array(this.capacity);
    for (let o = 0; o < oldCap; o++) {
      if (!oldUsed[o]) continue;
      const id = oldIds.subarray(o * ID_BYTES, (o + 1) * ID_BYTES);
      let s = this.hash(id);
      while (this.used[s]) s = (s + 1) & this.mask;
      this.ids.set(id, s * ID_BYTES);
      this.used[s] = 1;
    }
  }
}
