// The directory: an organisational unit renamed back or recreated, a deleted user brought back whole.

import { randomBytes } from 'node:crypto';
import { withDatabase } from '../../../pg/settings.js';
import { dropDatabase } from '../../../pg/databases.js';
import { restoreDatabase } from '../../../sources/pgsql-restore.js';
import { ConflictError } from '../../errors.js';
import type { RestoreOperationId } from '../../restore-capabilities.js';
import { DATABASE_TAG } from '../catalog.js';
import { partSnapshot } from '../generation-parts.js';
import { replaceContainers } from './containers.js';
import { checkCancel, MAIL_TAG, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';
import { replaceMailbox } from './mail.js';

export async function replaceOrgUnit(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const e = p.entry.entity;
  const outcome = await env.host.writers.directory.restoreOrgUnit(e.domainUid, e.uid, [...e.ouPath, e.name]);
  ctx.info(`organisational unit ${[...e.ouPath, e.name].join('/')}: ${outcome}`);
  return { orgUnit: e.uid, outcome };
}

/** The directory, then BlueMind's chain: mailbox, calendars, books, todolists, notes, web-app data. */
const STEPS = 7;

export async function completeUser(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const live = await env.host.directory.entity(p.entry.domainUid, p.entry.uid);
  if (live) throw new ConflictError(`${p.entry.displayName} exists again; complete.restore.user only restores a deleted user`);
  const db = (await env.host.databases()).find((d) => d.tag === DATABASE_TAG);
  if (!db) throw new Error('the host has no directory database');
  // The user's directory rows come from the dump, restored into a scratch database (as BlueMind does).
  const scratch = withDatabase(db.connection, `dp_restore_${randomBytes(6).toString('hex')}`);
  ctx.progress({ done: 0, total: STEPS, unit: 'steps', message: 'reading the directory as saved' });
  let groups: { groups: number; groupsGone: number };
  try {
    await restoreDatabase({ repo: env.repo, snapshot: p.catalog.database, target: scratch });
    checkCancel(ctx);
    groups = await env.host.writers.directory.restoreUser(scratch, p.entry.domainUid, p.entry.uid);
  } finally {
    await dropDatabase(scratch, scratch.database).catch((e: Error) => ctx.warn(`dropping ${scratch.database}: ${e.message}`));
  }
  ctx.info(`directory entry back; member again of ${groups.groups} groups${groups.groupsGone ? ` (${groups.groupsGone} no longer exist)` : ''}`);
  const result: Record<string, unknown> = { directory: true, groups: groups.groups };
  const step = async (n: number, op: RestoreOperationId, fn: () => Promise<Record<string, unknown>>) => {
    checkCancel(ctx);
    ctx.progress({ done: n, total: STEPS, unit: 'steps', message: op });
    result[op] = await fn();
  };
  const sub = { ...ctx, progress: () => {} } as RestoreContext;
  if (partSnapshot(p.catalog.generation, MAIL_TAG)) await step(1, 'replace.mailbox', () => replaceMailbox(env, { ...p, operation: 'replace.mailbox' }, sub));
  else ctx.warn(`generation ${p.catalog.generation.id} has no ${MAIL_TAG} part: the mailbox is not restored`);
  await step(2, 'replace.calendars', () => replaceContainers(env, p, sub, 'calendar'));
  await step(3, 'replace.books', () => replaceContainers(env, p, sub, 'addressbook'));
  await step(4, 'replace.todolists', () => replaceContainers(env, p, sub, 'todolist'));
  await step(5, 'replace.notes', () => replaceContainers(env, p, sub, 'notes'));
  await step(6, 'replace.webappdata', () => replaceContainers(env, p, sub, 'webappdata'));
  ctx.progress({ done: STEPS, total: STEPS, unit: 'steps' });
  return result;
}
