import { createHash } from 'node:crypto';

/** Blob, pack, index and snapshot ids are SHA-256 of the content, 32 bytes, written as lower-case hex. */
export const ID_BYTES = 32;

export function sha256(data: Uint8Array | readonly Uint8Array[]): Buffer {
  const h = createHash('sha256');
  if (data instanceof Uint8Array) h.update(data);
  else for (const part of data) h.update(part);
  return h.digest();
}

export function toHex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

export function fromHex(hex: string): Buffer {
  if (!isHexId(hex)) throw new Error(`not a 64-digit hex id: ${JSON.stringify(String(hex).slice(0, 80))}`);
  return Buffer.from(hex, 'hex');
}

/** Whether `s` is an id as written: 64 lower-case hex digits (a loop: called for every blob of every tree read). */
export function isHexId(s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== 2 * ID_BYTES) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}
