// undelete.mail: the messages that existed in any generation taken in a period and that the live mailbox no longer
// holds (in any folder) come back under `restored-<date of the run>/<folder>`, each once. One pass over the
// generations of the period, newest first: a message saved by several of them is read once (its content digest,
// from the repository's blob ids, says it is the same), and comes back with its newest flags.

import type { LiveMessage } from '../../../host/port.js';
import { InvalidInputError } from '../../errors.js';
import { RepositoryGenerationParts, partSnapshot, type GenerationView } from '../generation-parts.js';
import { parseHeaders } from '../mailbox-reader.js';
import { checkCancel, MAIL_TAG, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';
import { openSavedMailbox, restoredFolderName } from './mail.js';

/** The generations taken in [from, to] that saved the entity's mail server, newest first. */
export async function generationsInPeriod(env: RestoreEnv, p: PlannedRestore): Promise<GenerationView[]> {
  const loc = await env.host.mailboxLocation(p.entry.entity);
  if (!loc) throw new InvalidInputError('entity', `${p.entry.displayName} has no mailbox`);
  const all = await new RepositoryGenerationParts(async () => env.repo).list();
  return all
    .filter((g) => g.time >= p.from! && g.time <= p.to! && partSnapshot(g, MAIL_TAG, loc.server))
    .sort((a, b) => b.time.getTime() - a.time.getTime());
}

/** Messages without a Message-ID are told apart by size and internal date (to the second, as IMAP gives it). */
function looseKey(size: number, date: Date): string {
  return `${size}:${Math.floor(date.getTime() / 1000)}`;
}

export async function undeleteMail(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const generations = await generationsInPeriod(env, p);
  const loc = (await env.host.mailboxLocation(p.entry.entity))!;
  const base = restoredFolderName(new Date());
  const imap = await env.host.writers.imap();
  let appended = 0;
  let alreadyLive = 0;
  let bytes = 0;
  const folders = new Set<string>();
  try {
    // What the live mailbox holds now, wherever it is (a message moved to another folder is not deleted).
    const live: LiveMessage[] = await imap.inventory(loc);
    const liveIds = new Set(live.map((m) => m.messageId).filter((x): x is string => Boolean(x)));
    const liveLoose = new Set(live.filter((m) => !m.messageId).map((m) => looseKey(m.size, m.internalDate)));
    const seen = new Set<string>();
    const restoredIds = new Set<string>();
    ctx.progress({ done: 0, total: generations.length, unit: 'generations', message: `reading ${generations.length} generations` });
    for (const [gi, g] of generations.entries()) {
      checkCancel(ctx);
      const { box } = await openSavedMailbox(env, g, p.entry.entity);
      for (const f of await box.folders()) {
        if (f.archived) continue; // the archive is not the live mailbox: restore.mail.folder brings it back
        const target = f.path === 'INBOX' ? base : `${base}/${f.path}`;
        for (const m of await box.messages(f)) {
          if (seen.has(m.digest)) continue;
          seen.add(m.digest);
          checkCancel(ctx);
          const raw = await box.content(m);
          const id = parseHeaders(raw)['message-id'];
          // Still live, or already restored from a newer generation (same Message-ID, other bytes).
          if (id ? liveIds.has(id) || restoredIds.has(id) : liveLoose.has(looseKey(m.size, m.internalDate))) {
            alreadyLive++;
            continue;
          }
          if (!folders.has(target)) {
            await imap.ensureFolder(loc, target);
            folders.add(target);
          }
          await imap.append(loc, target, raw, m.flags, m.internalDate);
          if (id) restoredIds.add(id);
          appended++;
          bytes += m.size;
        }
      }
      ctx.progress({ done: gi + 1, total: generations.length, unit: 'generations', bytes, message: `${g.id}: ${appended} messages restored so far` });
    }
  } finally {
    await imap.close();
  }
  const total = appended + alreadyLive;
  ctx.info(`${appended} of ${total} ${total === 1 ? 'message was' : 'messages were'} restored`, { key: 'task.line.mail.appended', params: { count: appended, total } });
  if (alreadyLive) {
    ctx.info(`${alreadyLive} of ${total} ${total === 1 ? 'message was' : 'messages were'} already there and ${alreadyLive === 1 ? 'was' : 'were'} left alone`, {
      key: 'task.line.mail.skipped',
      params: { count: alreadyLive, total },
    });
  }
  return {
    mailbox: loc.imapLogin, folder: base, generations: generations.map((g) => g.id), folders: [...folders], messages: appended, alreadyPresent: alreadyLive, bytes,
  };
}
