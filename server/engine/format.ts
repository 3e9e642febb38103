import { compress, decompress } from 'zstd-napi';
import { RepositoryDamagedError } from './errors.js';

/**
 * Format version 1. Every metadata file (config, index, snapshot) and every tree blob starts with a
 * version byte; a reader refuses versions it does not know instead of misreading them.
 */
export const FORMAT_VERSION = 1;

/** Second byte of a metadata file: how the payload after the two header bytes is stored. */
export enum Encoding {
  Raw = 0,
  Zstd = 1,
}

export function encodeMetadata(payload: Buffer, zstd: boolean): Buffer {
  const body = zstd ? compress(payload, { compressionLevel: 3 }) : payload;
  return Buffer.concat([Buffer.from([FORMAT_VERSION, zstd ? Encoding.Zstd : Encoding.Raw]), body]);
}

export function decodeMetadata(file: Buffer, what: string): Buffer {
  if (file.length < 2) throw new RepositoryDamagedError(`${what}: truncated at ${file.length} bytes`);
  const version = file[0];
  if (version === 0 || version > FORMAT_VERSION) {
    throw new RepositoryDamagedError(`${what}: format version ${version} is not supported by this program (knows up to ${FORMAT_VERSION}); upgrade bm-dataprotect`);
  }
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

export function encodeJson(value: unknown): Buffer {
  return encodeMetadata(Buffer.from(JSON.stringify(value)), true);
}

export function decodeJson<T>(file: Buffer, what: string): T {
  const body = decodeMetadata(file, what);
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
   * `stream`: byte streams such as database dumps, cut small so that a few changed rows cost little.
   */
  chunkers: { file: ChunkerParams; stream: ChunkerParams };
  compression: { algorithm: 'zstd'; level: number };
  packSize: number;
}

export const DEFAULT_CONFIG: Omit<RepositoryConfig, 'id' | 'created'> = {
  version: FORMAT_VERSION,
  gearSeed: 0x2545f491,
  chunkers: {
    file: { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 },
    stream: { min: 2 * 1024, avg: 8 * 1024, max: 64 * 1024 },
  },
  compression: { algorithm: 'zstd', level: 3 },
  packSize: 16 * 1024 * 1024,
};
