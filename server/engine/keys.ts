import { randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { hostname } from 'node:os';
import { MASTER_KEY_BYTES, seal, tryOpen } from './crypto.js';
import { EngineError, PasswordError, RepositoryDamagedError } from './errors.js';
import { sha256, toHex } from './hash.js';
import type { Storage } from './storage.js';

/**
 * Key files of an encrypted repository (`keys/<id>`, FORMAT.md "Encryption"): each holds the master key
 * sealed with a key derived from one password by scrypt, so that several passwords open the repository
 * and one can be withdrawn without re-encrypting anything.
 */

/** scrypt cost: 32 MiB and a fraction of a second per attempt (what restic and age use). */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };

interface KeyFile {
  version: 2;
  created: string;
  hostname: string;
  kdf: { algorithm: 'scrypt'; N: number; r: number; p: number; salt: string };
  /** The master key sealed (AES-256-GCM) with the derived key, base64. */
  key: string;
}

export interface KeyInfo {
  id: string;
  created: string;
  hostname: string;
}

const KEY_AAD = Buffer.from('bm-dataprotect master key');

function derive(password: string, salt: Buffer, p: ScryptParams): Promise<Buffer> {
  // 128·N·r bytes are needed; twice that leaves room for Node's own accounting.
  const opts: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFC'), salt, 32, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** A password a key can be made from: not empty. */
export function assertUsablePassword(password: string | undefined | null): asserts password is string {
  if (!password) throw new PasswordError('the repository password is empty: give one (DP_REPOSITORY_PASSWORD or a password file)');
}

/** Writes a new key file opening the repository with `password`; returns its id. */
export async function addKey(storage: Storage, password: string, master: Buffer, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  assertUsablePassword(password);
  const salt = randomBytes(32);
  const file: KeyFile = {
    version: 2,
    created: new Date().toISOString(),
    hostname: hostname(),
    kdf: { algorithm: 'scrypt', ...params, salt: salt.toString('base64') },
    key: seal(await derive(password, salt, params), master, KEY_AAD).toString('base64'),
  };
  const bytes = Buffer.from(JSON.stringify(file, null, 1) + '\n');
  const id = toHex(sha256(bytes));
  await storage.write('key', id, bytes);
  return id;
}

/** Most memory a key file may make scrypt take (128·N·r bytes): the default takes 32 MiB. */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

/** The key files, oldest first; `damaged`: those that cannot be key files (each with why). */
async function readKeyFiles(storage: Storage): Promise<{ keys: { id: string; file: KeyFile }[]; damaged: string[] }> {
  const keys: { id: string; file: KeyFile }[] = [];
  const damaged: string[] = [];
  for await (const f of storage.list('key')) {
    const bytes = await storage.read('key', f.name);
    let file: KeyFile;
    try {
      file = JSON.parse(bytes.toString('utf8')) as KeyFile;
    } catch {
      damaged.push(`key ${f.name.slice(0, 12)}: not valid JSON`);
      continue;
    }
    const k = file?.kdf;
    // A key file sets how much memory and time its scrypt takes: bound it, or a forged one exhausts the machine.
    const sane = file?.version === 2 && k?.algorithm === 'scrypt' && [k.N, k.r, k.p].every(Number.isSafeInteger) &&
      k.N >= 2 && (k.N & (k.N - 1)) === 0 && k.r >= 1 && k.p >= 1 && k.p <= 16 && 128 * k.N * k.r <= MAX_SCRYPT_MEMORY &&
      typeof k.salt === 'string' && typeof file.key === 'string';
    if (!sane) damaged.push(`key ${f.name.slice(0, 12)}: not a version 2 scrypt key file within bounds`);
    else keys.push({ id: f.name, file });
  }
  keys.sort((a, b) => (a.file.created < b.file.created ? -1 : a.file.created > b.file.created ? 1 : a.id < b.id ? -1 : 1));
  return { keys, damaged: damaged.sort() };
}

/** The master key, from the first key file the password opens; PasswordError when none does. */
export async function unlock(storage: Storage, password: string | undefined | null): Promise<{ master: Buffer; keyId: string }> {
  if (!password) {
    throw new PasswordError(`repository ${storage.location} is encrypted: give its password (DP_REPOSITORY_PASSWORD, or --password-file FILE)`, 'missing', storage.location);
  }
  const { keys, damaged } = await readKeyFiles(storage);
  if (keys.length === 0) {
    throw new RepositoryDamagedError(`repository ${storage.location} is encrypted but has no usable key file${damaged.length ? ` (${damaged.join('; ')})` : ' (keys/ is empty)'}: it cannot be opened`);
  }
  // A damaged key file does not stop the others from opening the repository.
  for (const { id, file } of keys) {
    const derived = await derive(password, Buffer.from(file.kdf.salt, 'base64'), file.kdf);
    const master = tryOpen(derived, Buffer.from(file.key, 'base64'), KEY_AAD);
    if (master?.length === MASTER_KEY_BYTES) return { master, keyId: id };
  }
  const also = damaged.length ? `; ${damaged.length} more cannot be read (${damaged.join('; ')})` : '';
  throw new PasswordError(`wrong password for repository ${storage.location}: none of its ${keys.length} key(s) opens with it${also}`, 'wrong', storage.location);
}

/** The usable keys; damaged key files are an error here, so that `repo key list` shows them to be removed. */
export async function listKeys(storage: Storage): Promise<KeyInfo[]> {
  const { keys, damaged } = await readKeyFiles(storage);
  if (damaged.length) throw new RepositoryDamagedError(`${damaged.join('; ')}: remove ${damaged.length === 1 ? 'it' : 'them'} from keys/ by hand`);
  return keys.map(({ id, file }) => ({ id, created: file.created, hostname: file.hostname }));
}

/** Removes a key (by id or unique id prefix); never the last one, which would lock everyone out for good. */
export async function removeKey(storage: Storage, ref: string): Promise<string> {
  const keys = await listKeys(storage);
  const matches = /^[0-9a-f]{4,64}$/.test(ref) ? keys.filter((k) => k.id.startsWith(ref)) : [];
  if (matches.length === 0) throw new EngineError(`no key ${JSON.stringify(ref)} in ${storage.location} (see 'repo key list')`);
  if (matches.length > 1) throw new EngineError(`key id ${ref} is ambiguous (${matches.length} keys start with it); give more digits`);
  if (keys.length === 1) throw new EngineError(`key ${matches[0].id.slice(0, 8)} is the repository's only key: add another before removing it, or the repository could never be opened again`);
  await storage.delete('key', matches[0].id);
  return matches[0].id;
}
