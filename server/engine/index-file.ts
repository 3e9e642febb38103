import { BlobType, compressionCode, RECORD_BYTES } from './blob-index.js';
import type { RepositoryCipher } from './crypto.js';
import { RepositoryDamagedError } from './errors.js';
import { DICTIONARY_FORMAT, decodeMetadata, encodeMetadata, isSealed } from './format.js';
import { ID_BYTES, fromHex, toHex } from './hash.js';
import type { PackEntry } from './pack.js';

/**
 * An index file maps the blobs of some packs to their place in them.
 * After the 2 metadata header bytes: supersedes count u32 LE, superseded index ids (32 bytes each),
 * pack count u32 LE, then per pack: pack id (32 bytes), blob count u32 LE, and per blob 46 bytes:
 * id (32), type u8, compression u8, offset u32 LE, stored length u32 LE, raw length u32 LE.
 * Version 3 (a file where some pack has a dictionary): after each pack id, the id of its dictionary blob
 * (32 bytes, zeros for none); a blob of compression 2 is compressed with it.
 */
export interface IndexFile {
  supersedes: string[];
  packs: IndexedPack[];
}

export interface IndexedPack {
  id: string;
  /** The dictionary of the pack's blobs of compression 2 (version 3). */
  dictionary?: string;
  blobs: PackEntry[];
}

/** Bytes of one blob's record (the layout BlobIndex keeps its entries in). */
export const INDEX_BLOB_BYTES = RECORD_BYTES;
const BLOB_BYTES = INDEX_BLOB_BYTES;

export function encodeIndex(index: IndexFile, cipher: RepositoryCipher | null = null): Buffer {
  // Version 1 byte for byte unless a pack has a dictionary: a repository that uses none stays readable by
  // the versions before dictionaries.
  const v3 = index.packs.some((p) => p.dictionary !== undefined);
  if (v3 && cipher) throw new Error('an encrypted repository has no dictionaries');
  let size = 4 + index.supersedes.length * ID_BYTES + 4;
  for (const p of index.packs) size += ID_BYTES + (v3 ? ID_BYTES : 0) + 4 + p.blobs.length * BLOB_BYTES;
  const b = Buffer.alloc(size);
  let o = b.writeUInt32LE(index.supersedes.length, 0);
  for (const s of index.supersedes) o += fromHex(s).copy(b, o);
  o = b.writeUInt32LE(index.packs.length, o);
  for (const p of index.packs) {
    o += fromHex(p.id).copy(b, o);
    if (v3) o += p.dictionary !== undefined ? fromHex(p.dictionary).copy(b, o) : ID_BYTES;
    o = b.writeUInt32LE(p.blobs.length, o);
    for (const e of p.blobs) {
      if (e.dictionary !== undefined && e.dictionary !== p.dictionary) throw new Error(`blob ${toHex(e.id).slice(0, 12)}: compressed with a dictionary its pack does not have`);
      o += e.id.copy(b, o);
      b[o++] = e.type;
      b[o++] = compressionCode(e);
      o = b.writeUInt32LE(e.offset, o);
      o = b.writeUInt32LE(e.length, o);
      o = b.writeUInt32LE(e.rawLength, o);
    }
  }
  return encodeMetadata(b, false, cipher, 'index', v3 ? DICTIONARY_FORMAT : undefined);
}

export function decodeIndex(name: string, file: Buffer, cipher: RepositoryCipher | null = null): IndexFile {
  const view = readIndexView(name, file, cipher);
  const b = view.bytes;
  const packs: IndexFile['packs'] = view.packs.map((p) => {
    const blobs: PackEntry[] = [];
    for (let i = 0, o = p.at; i < p.count; i++, o += BLOB_BYTES) {
      blobs.push({
        id: Buffer.from(b.subarray(o, o + ID_BYTES)),
        type: b[o + ID_BYTES] === 1 ? BlobType.Tree : BlobType.Data,
        zstd: b[o + ID_BYTES + 1] === 1 || b[o + ID_BYTES + 1] === 2,
        ...(b[o + ID_BYTES + 1] === 2 ? { dictionary: p.dictionary } : {}),
        offset: b.readUInt32LE(o + ID_BYTES + 2),
        length: b.readUInt32LE(o + ID_BYTES + 6),
        rawLength: b.readUInt32LE(o + ID_BYTES + 10),
      });
    }
    return { id: p.id, ...(p.dictionary !== undefined ? { dictionary: p.dictionary } : {}), blobs };
  });
  return { supersedes: view.supersedes, packs };
}

/** A blob of an index file as walkIndex hands it over: one object reused from blob to blob, its id a view. */
export interface IndexedBlob extends PackEntry {
  pack: string;
}

/**
 * Every pack and blob of an index file in order, without building the file's objects; returns the ids of the
 * index files it supersedes. The whole file is checked first (readIndexView): a damaged one throws before
 * anything is handed over. `blob` gets one object reused for every blob: copy what is kept.
 */
export function walkIndex(name: string, file: Buffer, cipher: RepositoryCipher | null, visit: { pack?(id: string, blobs: number, dictionary?: string): void; blob(b: IndexedBlob): void }): string[] {
  const view = readIndexView(name, file, cipher);
  const b = view.bytes;
  const blob: IndexedBlob = { pack: '', id: b.subarray(0, 0), type: BlobType.Data, zstd: false, offset: 0, length: 0, rawLength: 0 };
  for (const p of view.packs) {
    visit.pack?.(p.id, p.count, p.dictionary);
    blob.pack = p.id;
    for (let i = 0, o = p.at; i < p.count; i++, o += BLOB_BYTES) {
      blob.id = b.subarray(o, o + ID_BYTES);
      blob.type = b[o + ID_BYTES] === 1 ? BlobType.Tree : BlobType.Data;
      blob.zstd = b[o + ID_BYTES + 1] === 1 || b[o + ID_BYTES + 1] === 2;
      if (b[o + ID_BYTES + 1] === 2) blob.dictionary = p.dictionary;
      else delete blob.dictionary;
      blob.offset = b.readUInt32LE(o + ID_BYTES + 2);
      blob.length = b.readUInt32LE(o + ID_BYTES + 6);
      blob.rawLength = b.readUInt32LE(o + ID_BYTES + 10);
      visit.blob(blob);
    }
  }
  return view.supersedes;
}

/** An index file checked for its bounds but not turned into objects: where each pack's blob records are. */
export interface IndexView {
  supersedes: string[];
  packs: { id: string; dictionary?: string; count: number; at: number }[];
  bytes: Buffer;
}

export function readIndexView(name: string, file: Buffer, cipher: RepositoryCipher | null = null): IndexView {
  const what = `index ${name.slice(0, 12)}`;
  const b = decodeMetadata(file, what, cipher, 'index');
  const v3 = !isSealed(file) && file[0] === DICTIONARY_FORMAT;
  const need = (o: number, n: number) => {
    if (o + n > b.length) throw new RepositoryDamagedError(`${what}: truncated at ${b.length} bytes (needed ${o + n})`);
  };
  let o = 0;
  need(o, 4);
  const nSup = b.readUInt32LE(o);
  o += 4;
  need(o, nSup * ID_BYTES + 4);
  const supersedes: string[] = [];
  for (let i = 0; i < nSup; i++, o += ID_BYTES) supersedes.push(toHex(b.subarray(o, o + ID_BYTES)));
  const nPacks = b.readUInt32LE(o);
  o += 4;
  const packs: IndexView['packs'] = [];
  for (let p = 0; p < nPacks; p++) {
    need(o, ID_BYTES + (v3 ? ID_BYTES : 0) + 4);
    const id = toHex(b.subarray(o, o + ID_BYTES));
    o += ID_BYTES;
    let dictionary: string | undefined;
    if (v3) {
      const d = b.subarray(o, o + ID_BYTES);
      if (d.some((x) => x !== 0)) dictionary = toHex(d);
      o += ID_BYTES;
    }
    const count = b.readUInt32LE(o);
    o += 4;
    need(o, count * BLOB_BYTES);
    // A blob of compression 2 needs its pack's dictionary: without one it could never be read.
    for (let i = 0; i < count; i++) {
      const code = b[o + i * BLOB_BYTES + ID_BYTES + 1];
      if (code === 2 && dictionary === undefined) throw new RepositoryDamagedError(`${what}: pack ${id.slice(0, 12)} has blobs compressed with a dictionary but names none`);
    }
    packs.push({ id, ...(dictionary !== undefined ? { dictionary } : {}), count, at: o });
    o += count * BLOB_BYTES;
  }
  return { supersedes, packs, bytes: b };
}
