// restore.into.account: a user's mail, calendars, address books and task lists from a generation go into another
// live account (an investigation, a departed employee's successor). The mail is appended under
// `restored-<date>-<login>/` of the target's mailbox; each container becomes a new container of the target. The
// source's own data is not touched. Run twice, it appends no message twice and replaces the copies it made.

import type { ContainerType } from '../../../host/port.js';
import { containerExport } from '../../../sources/pgsql-manifest.js';
import { InvalidInputError } from '../../errors.js';
import { partSnapshot } from '../generation-parts.js';
import { checkCancel, MAIL_TAG, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';
import { appendSteps, openSavedMailbox, subfolderSteps } from './mail.js';

const TYPES: readonly ContainerType[] = ['calendar', 'addressbook', 'todolist'];

/**
 * `restored-YYYY-MM-DD-<login>`: the generation's date and the source user's login. `.` and `/` separate folder
 * levels in a Maildir++ mailbox, so they become `_` (`jane.doe` → `restored-2026-01-06-jane_doe`).
 */
export function restoredIntoFolderName(time: Date, login: string): string {
  return `restored-${time.toISOString().slice(0, 10)}-${login.replace(/[./\s]+/g, '_')}`;
}

export async function restoreIntoAccount(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const into = p.into;
  if (!into) throw new InvalidInputError('targetUid', `${p.operation} needs the account that receives the data`);
  const source = p.entry.entity;
  const g = p.catalog.generation;
  const base = restoredIntoFolderName(g.time, source.name);
  const result: Record<string, unknown> = { target: into.uid, folder: base };

  // Mail first (the larger part), when the generation saved it.
  const sourceLoc = await env.host.mailboxLocation(source);
  const targetLoc = await env.host.mailboxLocation(into);
  if (!targetLoc) throw new InvalidInputError('targetUid', `${into.displayName} has no mailbox`);
  if (sourceLoc && partSnapshot(g, MAIL_TAG, sourceLoc.server)) {
    const { box } = await openSavedMailbox(env, g, source);
    const r = await appendSteps(env, targetLoc, await subfolderSteps(box, base), ctx);
    result.messages = r.appended;
    result.alreadyPresent = r.skipped;
    result.bytes = r.bytes;
  } else {
    ctx.warn(`generation ${g.id} holds no mail of ${p.entry.displayName}: only calendars and contacts are restored`);
    result.messages = 0;
  }

  // Then each container, as a new one of the target's (its uid says where it came from, so a rerun replaces it).
  const containers = p.entry.containers.filter((c) => TYPES.includes(c.type));
  const total = containers.reduce((n, c) => n + c.items, 0);
  ctx.progress({ done: 0, total, unit: 'items', message: `copying ${containers.length} containers into ${into.displayName}` });
  const day = g.time.toISOString().slice(0, 10);
  let done = 0;
  const copies: { uid: string; from: string; type: ContainerType; items: number }[] = [];
  for (const c of containers) {
    checkCancel(ctx);
    const uid = `${c.uid}:restored:${day}:${into.uid}`;
    const name = `${c.name} (${source.name}, ${day})`;
    const r = await env.host.writers.database.replaceContainer(containerExport(env.repo, p.catalog.database, p.catalog.manifest, c, env.host.entityData), { uid, name, owner: into.uid, domainUid: into.domainUid });
    done += r.items;
    copies.push({ uid, from: c.uid, type: c.type, items: r.items });
    ctx.info(`${name}: ${r.items} items`);
    ctx.progress({ done, total, unit: 'items' });
  }
  result.containers = copies;
  result.items = done;
  return result;
}
