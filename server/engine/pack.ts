import { BlobType, compressionCode } from './blob-index.js';
import { RepositoryDamagedError } from './errors.js';
import { SEAL_OVERHEAD, type RepositoryCipher } from './crypto.js';
import { ENCRYPTED_FORMAT, PLAIN_FORMAT } from './format.js';
import { ID_BYTES } from './hash.js';

/**
 * A pack file: [version u8] [stored blob bytes ...] [header entries] [entry count u32 LE].
 * Header entry (42 bytes): type u8, compression u8 (0 raw, 1 zstd, 2 zstd with the pack's dictionary, which only
 * the index names: version 3), stored length u32 LE,
 * raw length u32 LE, blob id (32 bytes). Blob i starts right after blob i-1 (the first at offset 1),
 * so the pack alone is enough to rebuild its index entries.
 * Encrypted (version 2): each blob's stored bytes are sealed (by the codec workers), and so are the header
 * entries; the last 4 bytes are then the length of the sealed header.
 */
export const PACK_ENTRY_BYTES = 2 + 4 + 4 + ID_BYTES;
/** Associated data of an encrypted pack's sealed header. */
export const PACK_HEADER_AAD = Buffer.from('pack header');

/** The size a pack of `blobs` blobs taking `stored` bytes has: what `check` expects without reading it. */
export function packBytes(blobs: number, stored: number, encrypted: boolean): number {
  return 1 + stored + blobs * PACK_ENTRY_BYTES + 4 + (encrypted ? SEAL_OVERHEAD : 0);
}

/** How many bytes at the end of a pack hold its header, from its last 4 bytes. */
export function packHeaderBytes(lastWord: number, encrypted: boolean): number {
  return (encrypted ? lastWord : lastWord * PACK_ENTRY_BYTES) + 4;
}

export interface PackEntry {
  id: Buffer;
  type: BlobType;
  zstd: boolean;
  /**
   * Compression code 2 (version 3): the zstd frame was made with this dictionary (the id of the blob that holds
   * it, hex); `zstd` is then true. Read from a pack header alone it is '' (only the index names the dictionary).
   */
  dictionary?: string;
  offset: number;
  length: number;
  rawLength: number;
}


/** Assembles one pack in memory; data and tree blobs go to separate packs. */
export class PackBuilder {
  readonly parts: Buffer[];
  readonly entries: PackEntry[] = [];
  size = 1;

  /** With a cipher, `add` takes blobs already sealed, and the header is sealed by `finish`. */
  constructor(private readonly cipher: RepositoryCipher | null = null) {
    this.parts = [Buffer.from([cipher ? ENCRYPTED_FORMAT : PLAIN_FORMAT])];
  }

  add(id: Buffer, type: BlobType, stored: Buffer, zstd: boolean, rawLength: number, dictionary?: string): void {
    this.entries.push({ id, type, zstd, ...(dictionary !== undefined ? { dictionary } : {}), offset: this.size, length: stored.length, rawLength });
    this.parts.push(stored);
    this.size += stored.length;
  }

  get blobCount(): number {
    return this.entries.length;
  }

  /** The pack's bytes, header last. */
  finish(): Buffer[] {
    return [...this.parts, ...packHeader(this.entries, this.cipher ? (h) => this.cipher!.seal(h, PACK_HEADER_AAD) : null)];
  }
}

/**
 * The header that ends a pack, as the pieces to write after the blobs: the entries and their count, or
 * (encrypted) the sealed entries and their sealed length. `seal` seals with the pack header's associated
 * data (PACK_HEADER_AAD); null in a plain repository.
 */
export function packHeader(entries: readonly Omit<PackEntry, 'offset'>[], seal: ((header: Buffer) => Buffer) | null): Buffer[] {
  const header = Buffer.alloc(entries.length * PACK_ENTRY_BYTES + 4);
  let o = 0;
  for (const e of entries) {
    header[o] = e.type;
    header[o + 1] = compressionCode(e);
    header.writeUInt32LE(e.length, o + 2);
    header.writeUInt32LE(e.rawLength, o + 6);
    e.id.copy(header, o + 10);
    o += PACK_ENTRY_BYTES;
  }
  if (seal) {
    const sealed = seal(header.subarray(0, o));
    const length = Buffer.alloc(4);
    length.writeUInt32LE(sealed.length);
    return [sealed, length];
  }
  header.writeUInt32LE(entries.length, o);
  return [header];
}

/** Reads the header at the end of a pack. `tail` holds the last bytes of the pack (at least the header). */
export function parsePackHeader(name: string, packSize: number, tail: Buffer, cipher: RepositoryCipher | null = null): PackEntry[] {
  const what = `pack ${name.slice(0, 12)}`;
  if (packSize < 5 || tail.length < 4) throw new RepositoryDamagedError(`${what}: truncated at ${packSize} bytes, no header`);
  const last = tail.readUInt32LE(tail.length - 4);
  const headerBytes = packHeaderBytes(last, cipher !== null) - 4;
  if (headerBytes + 5 > packSize) throw new RepositoryDamagedError(`${what}: header claims ${cipher ? `${last} bytes` : `${last} blobs`}, more than ${packSize} bytes can hold`);
  if (headerBytes + 4 > tail.length) throw new RepositoryDamagedError(`${what}: need ${headerBytes + 4} header bytes, have ${tail.length}`);
  let header = tail.subarray(tail.length - 4 - headerBytes, tail.length - 4);
  if (cipher) {
    header = cipher.open(header, `${what} header`, PACK_HEADER_AAD);
    if (header.length % PACK_ENTRY_BYTES !== 0) throw new RepositoryDamagedError(`${what}: header of ${header.length} bytes is not whole entries`);
  }
  const count = header.length / PACK_ENTRY_BYTES;
  const entries: PackEntry[] = [];
  let offset = 1;
  for (let i = 0, o = 0; i < count; i++, o += PACK_ENTRY_BYTES) {
    const length = header.readUInt32LE(o + 2);
    entries.push({
      type: header[o] === 1 ? BlobType.Tree : BlobType.Data,
      zstd: header[o + 1] === 1 || header[o + 1] === 2,
      ...(header[o + 1] === 2 ? { dictionary: '' } : {}),
      length,
      rawLength: header.readUInt32LE(o + 6),
      id: Buffer.from(header.subarray(o + 10, o + 10 + ID_BYTES)),
      offset,
    });
    offset += length;
  }
  if (offset !== packSize - headerBytes - 4) {
    throw new RepositoryDamagedError(`${what}: blobs end at ${offset} but header starts at ${packSize - headerBytes - 4}`);
  }
  return entries;
}
