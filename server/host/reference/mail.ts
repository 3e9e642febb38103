// RFC 5322 messages and Maildir file names for the reference spool.

import { createHash, randomBytes } from 'node:crypto';
import type { Prng } from '../../demo/prng.js';
import { sentence } from './words.js';

export interface MessageSpec {
  from: string;
  to: string[];
  subject: string;
  date: Date;
  messageId: string;
  body: string;
  attachment?: { name: string; type: string; content: Buffer };
}

function wrap76(b64: string): string {
  return b64.replace(/.{1,76}/g, '$&\r\n');
}

/** Q-encodes a header value when it is not plain ASCII. */
function headerText(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
}

export function buildMessage(m: MessageSpec): Buffer {
  const head = [
    `Return-Path: <${m.from.replace(/^.*</, '').replace(/>$/, '')}>`,
    `Message-ID: <${m.messageId}>`,
    `Date: ${m.date.toUTCString().replace('GMT', '+0000')}`,
    `From: ${headerText(m.from)}`,
    `To: ${m.to.map(headerText).join(', ')}`,
    `Subject: ${headerText(m.subject)}`,
    'MIME-Version: 1.0',
  ];
  const text = m.body.replace(/\r?\n/g, '\r\n');
  if (!m.attachment) {
    head.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit');
    return Buffer.from(head.join('\r\n') + '\r\n\r\n' + text + '\r\n', 'utf8');
  }
  const boundary = `----=_Part_${createHash('sha1').update(m.messageId).digest('hex').slice(0, 16)}`;
  head.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
  const parts = [
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    text,
    `--${boundary}`,
    `Content-Type: ${m.attachment.type}; name="${m.attachment.name}"`,
    `Content-Disposition: attachment; filename="${m.attachment.name}"`,
    'Content-Transfer-Encoding: base64',
    '',
    wrap76(m.attachment.content.toString('base64')),
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(head.join('\r\n') + '\r\n\r\n' + parts.join('\r\n'), 'utf8');
}

/** Maildir file name with the size and flags Dovecot reads back (`:2,<flags>`, flags sorted). */
export function maildirName(date: Date, seq: number, size: number, flags: string): string {
  const sorted = [...flags].sort().join('');
  return `${Math.floor(date.getTime() / 1000)}.M${seq}P1.bm-mail,S=${size}:2,${sorted}`;
}

/** A small attachment whose bytes look like a document (compressible header, random body). */
export function attachmentFor(rng: Prng, i: number): { name: string; type: string; content: Buffer } {
  const kind = i % 3;
  const size = rng.int(2_000, 24_000);
  if (kind === 0) {
    return { name: `report-${i}.pdf`, type: 'application/pdf', content: Buffer.concat([Buffer.from('%PDF-1.4\n'), rng.bytes(size)]) };
  }
  if (kind === 1) {
    return { name: `photo-${i}.jpg`, type: 'image/jpeg', content: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), rng.bytes(size)]) };
  }
  const lines = Array.from({ length: Math.ceil(size / 60) }, (_, n) => `${n};${sentence(rng, 5)}`);
  return { name: `export-${i}.csv`, type: 'text/csv', content: Buffer.from(lines.join('\n')) };
}

/** Dovecot `{SSHA256}` password scheme: base64(sha256(password + salt) + salt). */
export function ssha256(password: string, salt: Buffer = randomBytes(8)): string {
  const digest = createHash('sha256').update(Buffer.concat([Buffer.from(password, 'utf8'), salt])).digest();
  return `{SSHA256}${Buffer.concat([digest, salt]).toString('base64')}`;
}
