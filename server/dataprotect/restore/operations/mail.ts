// Mail restores: into the live mailbox through IMAP APPEND (a subfolder, a folder, some messages), or the whole
// mailbox swapped back from the saved Maildir subtree.

import path from 'node:path';
import { restore } from '../../../engine/index.js';
import type { ImapWriter, MailboxLocation } from '../../../host/port.js';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import { partSnapshot } from '../generation-parts.js';
import { parseHeaders, SavedMailbox, type SavedMessage } from '../mailbox-reader.js';
import { checkCancel, MAIL_TAG, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';

/** `restored-YYYY-MM-DD` of a generation's date (UTC, as the generation's id shows it). */
export function restoredFolderName(time: Date): string {
  return `restored-${time.toISOString().slice(0, 10)}`;
}

/** The entity's mailbox as saved in the generation, and where it lives now. */
export async function savedMailbox(env: RestoreEnv, p: PlannedRestore): Promise<{ box: SavedMailbox; loc: MailboxLocation }> {
  const loc = await env.host.mailboxLocation(p.entry.entity);
  if (!loc) throw new InvalidInputError('entity', `${p.entry.displayName} has no mailbox`);
  const snap = partSnapshot(p.catalog.generation, MAIL_TAG, loc.server);
  if (!snap) throw new InvalidInputError('operation', `generation ${p.catalog.generation.id} has no ${MAIL_TAG} part of server ${loc.server}`);
  const box = new SavedMailbox(env.repo, snap, loc.partPath);
  await box.folders();
  return { box, loc };
}

/** Message-IDs already in a live folder (a restore run twice appends nothing twice). */
async function liveMessageIds(imap: ImapWriter, loc: MailboxLocation, folder: string): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (const id of await imap.messageIds(loc, folder)) ids.set(id, (ids.get(id) ?? 0) + 1);
  return ids;
}

export async function appendMail(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext, mode: 'subfolder' | 'folder' | 'messages'): Promise<Record<string, unknown>> {
  const { box, loc } = await savedMailbox(env, p);
  const base = restoredFolderName(p.catalog.generation.time);
  // What goes where: [saved folder, live folder, messages].
  const plan: { target: string; messages: SavedMessage[] }[] = [];
  const folders = await box.folders();
  if (mode === 'subfolder') {
    for (const f of folders) plan.push({ target: f.path === 'INBOX' ? base : `${base}/${f.path}`, messages: await box.messages(f) });
  } else if (mode === 'folder') {
    for (const f of folders.filter((x) => x.path === p.folder || x.path.startsWith(`${p.folder}/`))) plan.push({ target: f.path, messages: await box.messages(f) });
  } else {
    const f = await box.folder(p.folder!);
    const wanted = new Set(p.messageIds);
    const messages = (await box.messages(f)).filter((m) => wanted.has(m.id));
    const missing = [...wanted].filter((id) => !messages.some((m) => m.id === id));
    if (missing.length) throw new NotFoundError(`messages not in folder ${p.folder} of the generation: ${missing.slice(0, 5).join(', ')}`);
    plan.push({ target: f.path, messages });
  }
  const total = plan.reduce((n, x) => n + x.messages.length, 0);
  const totalBytes = plan.reduce((n, x) => n + x.messages.reduce((s, m) => s + m.size, 0), 0);
  ctx.progress({ done: 0, total, unit: 'messages', bytes: 0, message: `restoring ${total} messages (${totalBytes} bytes) into ${loc.imapLogin}` });
  const imap = await env.host.writers.imap();
  let done = 0;
  let bytes = 0;
  let appended = 0;
  let skipped = 0;
  try {
    for (const step of plan) {
      checkCancel(ctx);
      await imap.ensureFolder(loc, step.target);
      const present = await liveMessageIds(imap, loc, step.target);
      for (const m of step.messages) {
        checkCancel(ctx);
        const raw = await box.content(m);
        const id = parseHeaders(raw)['message-id'];
        const n = id ? present.get(id) ?? 0 : 0;
        if (id && n > 0) {
          present.set(id, n - 1);
          skipped++;
        } else {
          await imap.append(loc, step.target, raw, m.flags, m.internalDate);
          appended++;
        }
        done++;
        bytes += m.size;
        ctx.progress({ done, total, unit: 'messages', bytes, message: step.target });
      }
      const count = step.messages.length;
      ctx.info(`${step.target}: ${count} ${count === 1 ? 'message' : 'messages'}`, { key: 'task.line.mail.folder', params: { folder: step.target, count } });
    }
  } finally {
    await imap.close();
  }
  // Counts say what happened: how many came back, how many were already there (a restore run twice).
  ctx.info(`${appended} of ${total} ${total === 1 ? 'message was' : 'messages were'} restored`, { key: 'task.line.mail.appended', params: { count: appended, total } });
  if (skipped) {
    ctx.info(`${skipped} of ${total} ${total === 1 ? 'message was' : 'messages were'} already there and ${skipped === 1 ? 'was' : 'were'} left alone`, {
      key: 'task.line.mail.skipped',
      params: { count: skipped, total },
    });
  }
  return { mailbox: loc.imapLogin, folders: plan.map((x) => x.target), messages: appended, alreadyPresent: skipped, bytes };
}

// --- the mailbox becomes what it was -----------------------------------------------------------------------------

export async function replaceMailbox(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const { box, loc } = await savedMailbox(env, p);
  const summary = await box.summary();
  const total = summary.reduce((n, f) => n + f.messages, 0);
  ctx.progress({ done: 0, total, unit: 'messages', message: `replacing ${loc.imapLogin} with ${total} messages in ${summary.length} folders` });
  let files = 0;
  let bytes = 0;
  let fetched = 0;
  await env.host.writers.trees.replaceMailbox(loc, async (staging) => {
    const r = await restore(env.repo, box.snapshot, {
      target: staging,
      include: [loc.partPath],
      progress: { update: (s) => ctx.progress({ done: Math.min(s.files, total), total, unit: 'messages', bytes: s.bytes }) },
    });
    checkCancel(ctx);
    if (r.errors) throw new Error(`restoring ${loc.partPath}: ${r.errors} errors${r.damage.length ? ': ' + r.damage.slice(0, 3).join('; ') : ''}`);
    files = r.files;
    bytes = r.bytes;
    fetched = r.bytesFetched;
    return path.join(staging, loc.partPath);
  });
  ctx.progress({ done: total, total, unit: 'messages', bytes });
  ctx.info(`${loc.imapLogin}: ${files} files back in the spool, index resynchronised`);
  return { mailbox: loc.imapLogin, folders: summary.length, messages: total, files, bytes, bytesReadFromRepository: fetched };
}
