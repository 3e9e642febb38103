import { createCipheriv, createDecipheriv, createHmac, hash, randomBytes, randomFillSync } from 'node:crypto';
import { RepositoryDamagedError } from './errors.js';

/**
 * The ciphers of an encrypted repository (format version 2): AES-256-GCM for every blob and every file,
 * HMAC-SHA256 for blob ids. Plain functions over key bytes, so that the codec workers use them too.
 */

/** Bytes a sealed piece takes beyond its plaintext: a 12-byte nonce before it, a 16-byte tag after. */
export const SEAL_OVERHEAD = 12 + 16;
/** A master key: 32 bytes of AES key, then 32 bytes of blob id (HMAC) key. */
export const MASTER_KEY_BYTES = 64;

/** The two halves of a master key. */
export interface MasterKey {
  /** AES-256-GCM key of blobs and files. */
  encrypt: Buffer;
  /** HMAC-SHA256 key of blob ids: without it, an id says nothing of the content it names. */
  id: Buffer;
}

export function splitMasterKey(bytes: Buffer): MasterKey {
  if (bytes.length !== MASTER_KEY_BYTES) throw new RepositoryDamagedError(`master key: ${bytes.length} bytes, expected ${MASTER_KEY_BYTES}`);
  return { encrypt: Buffer.from(bytes.subarray(0, 32)), id: Buffer.from(bytes.subarray(32)) };
}

/**
 * Random nonces drawn from the system's generator a few hundred at a time: one call per seal cost as much
 * as sealing a small blob. Each nonce is still 12 random bytes used once.
 */
const NONCES_AT_ONCE = 256;
let nonces = Buffer.alloc(0);
let nextNonce = 0;
function nonce(): Buffer {
  if (nextNonce === nonces.length) {
    nonces = randomFillSync(Buffer.allocUnsafeSlow(12 * NONCES_AT_ONCE));
    nextNonce = 0;
  }
  nextNonce += 12;
  return nonces.subarray(nextNonce - 12, nextNonce);
}

/**
 * sealInto encrypts this much at a time: each piece's ciphertext (a buffer the cipher allocates) is copied
 * into place while in the cache, and a large blob never needs a ciphertext buffer of its size.
 */
const SEAL_PIECE = 64 * 1024;

/** nonce (12, random) || AES-256-GCM ciphertext || tag (16). `aad` binds the piece to what it is. */
export function seal(key: Buffer, plain: Uint8Array | readonly Uint8Array[], aad?: Uint8Array): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  if (aad) c.setAAD(aad);
  const parts: Buffer[] = [iv];
  if (plain instanceof Uint8Array) parts.push(c.update(plain));
  else for (const p of plain) parts.push(c.update(p));
  parts.push(c.final(), c.getAuthTag());
  return Buffer.concat(parts);
}

/** Writes the sealed form of `plain` into `out` at `at` (plain.length + SEAL_OVERHEAD bytes); returns that length. */
export function sealInto(key: Buffer, plain: Uint8Array, out: Buffer, at: number): number {
  const iv = nonce();
  iv.copy(out, at);
  const c = createCipheriv('aes-256-gcm', key, iv);
  let o = at + 12;
  for (let p = 0; p < plain.length; p += SEAL_PIECE) o += c.update(plain.subarray(p, p + SEAL_PIECE)).copy(out, o);
  o += c.final().copy(out, o);
  o += c.getAuthTag().copy(out, o);
  return o - at;
}

/** The plaintext of a sealed piece; null when it was not sealed with this key (or was altered). */
export function tryOpen(key: Buffer, sealed: Uint8Array, aad?: Uint8Array): Buffer | null {
  if (sealed.length < SEAL_OVERHEAD) return null;
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  if (aad) d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  } catch {
    return null;
  }
}

/** The plaintext of a sealed piece; damaged when it cannot be authenticated. */
export function open(key: Buffer, sealed: Uint8Array, what: string, aad?: Uint8Array): Buffer {
  const plain = tryOpen(key, sealed, aad);
  if (!plain) throw new RepositoryDamagedError(`${what}: cannot be decrypted (damaged or altered: its authentication tag does not match)`);
  return plain;
}

/** A blob's id: SHA-256 of its content in a plain repository, HMAC-SHA256 with the id key in an encrypted one. */
export function blobIdOf(idKey: Buffer | null, data: Uint8Array): Buffer {
  // (One-shot SHA-256: no hash object per blob.)
  return idKey ? createHmac('sha256', idKey).update(data).digest() : hash('sha256', data, 'buffer');
}

/** The encryption of an open repository: its master key, with what the rest of the engine needs from it. */
export class RepositoryCipher {
  constructor(readonly key: MasterKey) {}

  /** Seals a metadata file's payload; `aad` names the file (kind and name) so that one cannot pass for another. */
  seal(plain: Uint8Array | readonly Uint8Array[], aad: Uint8Array): Buffer {
    return seal(this.key.encrypt, plain, aad);
  }

  open(sealed: Uint8Array, what: string, aad: Uint8Array): Buffer {
    return open(this.key.encrypt, sealed, what, aad);
  }

  blobId(data: Uint8Array): Buffer {
    return blobIdOf(this.key.id, data);
  }
}
