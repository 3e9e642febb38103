import { compress, decompress } from 'zstd-napi';
import type { RepositoryCipher } from './crypto.js';
import { RepositoryDamagedError } from './errors.js';

/**
 * The newest format version this program reads and writes. Every metadata file (config, index, snapshot)
 * and every pack starts with a version byte; a reader refuses versions it does not know instead of
 * misreading them. Version 1: plain repositories (still written as such); version 2: encrypted ones.
 */
export const FORMAT_VERSION = 3;
/** The format of a repository without encryption. */
export const PLAIN_FORMAT = 1;
/** The format of an encrypted repository (FORMAT.md, "Encryption"). */
export const ENCRYPTED_FORMAT = 2;
/**
 * A repository without encryption whose blobs may be compressed with a dictionary (FORMAT.md, "Dictionaries"):
 * what this program creates; the index files that name a dictionary carry this version.
 */
export const DICTIONARY_FORMAT = 3;

/** Second byte of a metadata file: how the payload after the two header bytes is stored. */
export enum Encoding {
  Raw = 0,
  Zstd = 1,
  /** AES-256-GCM (version 2): the sealed bytes hold an inner encoding byte (Raw or Zstd) and the payload. */
  Sealed = 2,
}

/**
 * A metadata file: [version][encoding][payload]. With a cipher (encrypted repository), the payload is
 * sealed with [version, Sealed] and `label` (what the file is, e.g. `snapshot`, `reference latest`) as
 * associated data, so that a file cannot pass for another kind.
 */
export function encodeMetadata(payload: Buffer, zstd: boolean, cipher: RepositoryCipher | null = null, label = '', version = PLAIN_FORMAT): Buffer {
  const body = zstd ? compress(payload, { compressionLevel: 3 }) : payload;
  const inner = zstd ? Encoding.Zstd : Encoding.Raw;
  if (!cipher) return Buffer.concat([Buffer.from([version, inner]), body]);
  const header = Buffer.from([ENCRYPTED_FORMAT, Encoding.Sealed]);
  return Buffer.concat([header, cipher.seal([Buffer.from([inner]), body], sealedAad(header, label))]);
}

function sealedAad(header: Buffer, label: string): Buffer {
  return Buffer.concat([header, Buffer.from(label, 'utf8')]);
}

/** Whether a metadata file is sealed (needs the repository's key to be read). */
export function isSealed(file: Buffer): boolean {
  return file.length >= 2 && file[0] === ENCRYPTED_FORMAT && file[1] === Encoding.Sealed;
}

export function decodeMetadata(file: Buffer, what: string, cipher: RepositoryCipher | null = null, label = ''): Buffer {
  if (file.length < 2) throw new RepositoryDamagedError(`${what}: truncated at ${file.length} bytes`);
  const version = file[0];
  if (version === 0 || version > FORMAT_VERSION) {
    throw new RepositoryDamagedError(`${what}: format version ${version} is not supported by this program (knows up to ${FORMAT_VERSION}); upgrade bm-dataprotect`);
  }
  if (file[1] === Encoding.Sealed) {
    if (!cipher) throw new RepositoryDamagedError(`${what}: encrypted, in a repository that is not`);
    const inner = cipher.open(file.subarray(2), what, sealedAad(file.subarray(0, 2), label));
    if (inner.length < 1) throw new RepositoryDamagedError(`${what}: empty once decrypted`);
    return decodeMetadata(Buffer.concat([Buffer.from([PLAIN_FORMAT]), inner]), what);
  }
  // A repository that is encrypted has every file sealed: a plain one in it was not written by its owner.
  if (cipher) throw new RepositoryDamagedError(`${what}: not encrypted, in an encrypted repository`);
  const body = file.subarray(2);
  switch (file[1]) {
    case Encoding.Raw:
      return body;
    case Encoding.Zstd:
      try {
        return decompress(body);
      } catch (err) {
        throw new RepositoryDamagedError(`${what}: compressed payload is damaged (${(err as Error).message})`);
      }
    default:
      throw new RepositoryDamagedError(`${what}: unknown encoding ${file[1]}`);
  }
}

export function encodeJson(value: unknown, cipher: RepositoryCipher | null = null, label = ''): Buffer {
  return encodeMetadata(Buffer.from(JSON.stringify(value)), true, cipher, label);
}

export function decodeJson<T>(file: Buffer, what: string, cipher: RepositoryCipher | null = null, label = ''): T {
  const body = decodeMetadata(file, what, cipher, label);
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    throw new RepositoryDamagedError(`${what}: not valid JSON`);
  }
}

/** Content-defined chunking parameters of one kind of content, in bytes. */
export interface ChunkerParams {
  /** Content smaller than this is one blob, without running the chunker. */
  min: number;
  avg: number;
  max: number;
}

export interface RepositoryConfig {
  version: number;
  /** Random repository id, hex. */
  id: string;
  created: string;
  /** Seed of the FastCDC gear table: part of the dedup identity, never changes for a repository. */
  gearSeed: number;
  /**
   * `file`: files of a tree (most mail is far below `min`, so one blob per message);
   * `stream`: byte streams such as exports, cut small so that a few changed lines cost little;
   * `rows` (version 3): streams of small rows (a database dump), cut smaller still and compressed with a
   * dictionary, so that a few rows changed at scattered places cost a few small chunks. Absent: `stream`.
   */
  chunkers: { file: ChunkerParams; stream: ChunkerParams; rows?: ChunkerParams };
  compression: { algorithm: 'zstd'; level: number };
  packSize: number;
}

export const DEFAULT_CONFIG: Omit<RepositoryConfig, 'id' | 'created'> = {
  version: DICTIONARY_FORMAT,
  gearSeed: 0x2545f491,
  chunkers: {
    file: { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 },
    stream: { min: 2 * 1024, avg: 8 * 1024, max: 64 * 1024 },
    rows: { min: 1024, avg: 4 * 1024, max: 32 * 1024 },
  },
  compression: { algorithm: 'zstd', level: 3 },
  packSize: 16 * 1024 * 1024,
};
