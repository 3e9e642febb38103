import { mkdir, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Prng } from './prng.js';

/**
 * A realistic, deterministic mail spool: one Maildir per user (INBOX, Sent, Trash, Archive and a few
 * folders of their own), one file per message with headers, text bodies and base64 attachments, some
 * messages delivered identically to several users, some attachments forwarded inside other messages.
 * `churn` then applies one day of life: new mail, deletions, flag changes (renames), moves between
 * folders. Used by the demo and the benchmark; the same seed always gives the same spool.
 */

export interface SpoolOptions {
  users: number;
  messagesPerUser: number;
  seed?: number;
  /** Share of messages with an attachment (default 0.2). */
  attachmentRate?: number;
}

export interface ChurnOptions {
  day: number;
  newPerUser?: number;
  deleteRate?: number;
  flagRate?: number;
  moveRate?: number;
}

export interface ChurnStats {
  added: number;
  deleted: number;
  flagged: number;
  moved: number;
}

const FOLDERS = ['', '.Sent', '.Trash', '.Archive', '.Projects', '.Projects.2026', '.Newsletters'];
const WORDS = ('the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there ' +
  'meeting project budget calendar invoice contract review quarterly report server backup restore mailbox please regards thanks attached ' +
  'tomorrow monday update proposal customer support ticket deadline schedule agenda minutes draft final version deploy release team').split(' ');

export function userName(i: number): string {
  return `user${String(i).padStart(4, '0')}`;
}

function text(rng: Prng, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(rng.pick(WORDS) + (rng.below(12) === 0 ? '.\n' : ''));
  return out.join(' ');
}

function wrap76(s: string): string {
  return s.replace(/(.{76})/g, '$1\r\n');
}

/** Attachments some messages share (a forwarded PDF, a signature logo), by index. */
function sharedAttachment(seed: number, k: number): Buffer {
  const r = new Prng(seed * 7919 + k, 'xorshift32');
  return r.bytes(40_000 + r.below(400_000));
}

function message(rng: Prng, seed: number, from: string, to: string, date: Date, attachmentRate: number): Buffer {
  const subject = text(rng, 3 + rng.below(6)).replace(/\n/g, '');
  const id = `${date.getTime().toString(36)}.${rng.below(1e9).toString(36)}@bench.example`;
  const headers = [
    `Return-Path: <${from}>`, `Received: from mx.bench.example by imap.bench.example; ${date.toUTCString()}`,
    `From: ${from}`, `To: ${to}`, `Subject: ${subject}`, `Date: ${date.toUTCString()}`, `Message-ID: <${id}>`, 'MIME-Version: 1.0',
  ];
  const body = text(rng, 40 + rng.below(rng.below(10) === 0 ? 3000 : 400));
  if (rng.next() >= attachmentRate) {
    return Buffer.from([...headers, 'Content-Type: text/plain; charset=utf-8', '', body, ''].join('\r\n'));
  }
  const boundary = `b${rng.below(1e9).toString(36)}`;
  const att = rng.below(3) === 0 ? sharedAttachment(seed, rng.below(20)) : rng.bytes(10_000 + rng.below(rng.below(10) === 0 ? 2_000_000 : 150_000));
  return Buffer.from(
    [
      ...headers, `Content-Type: multipart/mixed; boundary="${boundary}"`, '', `--${boundary}`, 'Content-Type: text/plain; charset=utf-8', '', body,
      `--${boundary}`, `Content-Type: application/octet-stream; name="file-${att.length}.bin"`, 'Content-Transfer-Encoding: base64', '',
      wrap76(att.toString('base64')), `--${boundary}--`, '',
    ].join('\r\n'),
  );
}

let counter = 0;
function maildirName(date: Date, size: number, flags: string): string {
  counter++;
  return `${Math.floor(date.getTime() / 1000)}.M${counter}P${4000 + (counter % 997)}.imap.bench.example,S=${size}:2,${flags}`;
}

async function writeMessage(path: string, data: Buffer, date: Date): Promise<void> {
  await writeFile(path, data);
  await utimes(path, date, date);
}

/** Creates the spool under `root` (which must not exist or be empty). Returns the number of messages. */
export async function generateSpool(root: string, opts: SpoolOptions): Promise<number> {
  const seed = opts.seed ?? 42;
  const rng = new Prng(seed, 'xorshift32');
  const rate = opts.attachmentRate ?? 0.2;
  const start = Date.UTC(2025, 0, 1);
  let count = 0;
  for (let u = 0; u < opts.users; u++) {
    const user = userName(u);
    for (const f of FOLDERS) for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(root, user, 'Maildir', f, sub), { recursive: true });
    const batch: Promise<void>[] = [];
    for (let m = 0; m < opts.messagesPerUser; m++) {
      const date = new Date(start + rng.below(365 * 86400) * 1000);
      const folder = m % 10 < 6 ? '' : rng.pick(FOLDERS);
      const from = `${userName(rng.below(opts.users))}@bench.example`;
      const data = message(rng, seed, from, `${user}@bench.example`, date, rate);
      const flags = rng.below(3) === 0 ? '' : rng.below(4) === 0 ? 'RS' : 'S';
      batch.push(writeMessage(join(root, user, 'Maildir', folder, 'cur', maildirName(date, data.length, flags)), data, date));
      // Mail to a list: the same bytes land in other mailboxes too.
      if (rng.below(25) === 0 && opts.users > 1) {
        const other = userName(rng.below(opts.users));
        await mkdir(join(root, other, 'Maildir', 'cur'), { recursive: true });
        batch.push(writeMessage(join(root, other, 'Maildir', 'cur', maildirName(date, data.length, '')), data, date));
        count++;
      }
      count++;
      if (batch.length >= 64) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
  }
  return count;
}

/** One day of mail life on the spool, deterministic for a given day. */
export async function churn(root: string, opts: ChurnOptions & { seed?: number; attachmentRate?: number }): Promise<ChurnStats> {
  const rng = new Prng((opts.seed ?? 42) * 1000 + opts.day, 'xorshift32');
  const stats: ChurnStats = { added: 0, deleted: 0, flagged: 0, moved: 0 };
  const users = (await readdir(root)).sort();
  const now = new Date(Date.UTC(2026, 0, 1) + opts.day * 86400_000);
  for (const user of users) {
    const md = join(root, user, 'Maildir');
    // Existing messages: flag changes (rename in place), moves to the archive, deletions.
    for (const f of FOLDERS) {
      const cur = join(md, f, 'cur');
      let names: string[];
      try {
        names = (await readdir(cur)).sort();
      } catch {
        continue;
      }
      for (const name of names) {
        const r = rng.next();
        if (r < (opts.deleteRate ?? 0.005)) {
          await rm(join(cur, name));
          stats.deleted++;
        } else if (r < (opts.deleteRate ?? 0.005) + (opts.flagRate ?? 0.03)) {
          const [base, flags = ''] = name.split(':2,');
          const next = flags.includes('S') ? (flags.includes('R') ? 'FRS' : 'RS') : 'S';
          await rename(join(cur, name), join(cur, `${base}:2,${next}`));
          stats.flagged++;
        } else if (r < (opts.deleteRate ?? 0.005) + (opts.flagRate ?? 0.03) + (opts.moveRate ?? 0.005) && f !== '.Archive') {
          await mkdir(join(md, '.Archive', 'cur'), { recursive: true });
          await rename(join(cur, name), join(md, '.Archive', 'cur', name));
          stats.moved++;
        }
      }
    }
    // Yesterday's new mail is seen today: new/ -> cur/ with the S flag.
    const newDir = join(md, 'new');
    for (const name of (await readdir(newDir).catch(() => [] as string[])).sort()) {
      await rename(join(newDir, name), join(md, 'cur', `${name.split(':2,')[0]}:2,S`));
      stats.moved++;
    }
    const n = opts.newPerUser ?? 8;
    for (let i = 0; i < n; i++) {
      const date = new Date(now.getTime() + rng.below(86400) * 1000);
      const data = message(rng, opts.seed ?? 42, `${rng.pick(users)}@bench.example`, `${user}@bench.example`, date, opts.attachmentRate ?? 0.2);
      await writeMessage(join(md, i % 2 ? 'new' : 'cur', maildirName(date, data.length, '')), data, date);
      stats.added++;
    }
  }
  return stats;
}
