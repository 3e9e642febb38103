// The directory: an organisational unit renamed back or recreated, a deleted user brought back whole.

import { randomBytes } from 'node:crypto';
import { withDatabase } from '../../../pg/settings.js';
import { dropDatabase } from '../../../pg/databases.js';
import { withClient } from '../../../pg/client.js';
import { clientQuery } from '../../../host/query.js';
import { readUserRecord } from '../../../sources/pgsql-manifest.js';
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

/**
 * The user's directory record as the generation saved it: read from its domain's users file (only that user's
 * line is parsed); a generation written before those files has its dump restored into a scratch database (as
 * BlueMind does), which takes as long as the installation is large.
 */
async function savedUserRecord(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<string> {
  const { domainUid, uid } = p.entry;
  const missing = () => new Error(`user ${uid} is not in the directory of ${domainUid} in the generation`);
  const files = p.catalog.manifest.users;
  if (files) {
    const file = files.find((f) => f.domainUid === domainUid);
    const record = file ? await readUserRecord(env.repo, p.catalog.database, file.path, uid, file.sorted === true) : null;
    if (!record) throw missing();
    return record;
  }
  const db = (await env.host.databases()).find((d) => d.tag === DATABASE_TAG);
  if (!db) throw new Error('the host has no directory database');
  const scratch = withDatabase(db.connection, `dp_restore_${randomBytes(6).toString('hex')}`);
  try {
    await restoreDatabase({ repo: env.repo, snapshot: p.catalog.database, target: scratch });
    checkCancel(ctx);
    const records = await withClient(scratch, async (c) => {
      const out: string[] = [];
      for await (const r of env.host.entityData.userRecords(clientQuery(c), { domainUid, uid })) out.push(r.record);
      return out;
    });
    if (!records.length) throw missing();
    return records[0];
  } finally {
    await dropDatabase(scratch, scratch.database).catch((e: Error) => ctx.warn(`dropping ${scratch.database}: ${e.message}`));
  }
}

/** The directory, then BlueMind's chain: mailbox, calendars, books, todolists, notes, web-app data. */
const STEPS = 7;

export async function completeUser(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const live = await env.host.directory.entity(p.entry.domainUid, p.entry.uid);
  if (live) throw new ConflictError(`${p.entry.displayName} exists again; complete.restore.user only restores a deleted user`);
  ctx.progress({ done: 0, total: STEPS, unit: 'steps', message: 'reading the directory as saved' });
  const record = await savedUserRecord(env, p, ctx);
  checkCancel(ctx);
  const groups = await env.host.writers.directory.restoreUser(record, p.entry.domainUid, p.entry.uid);
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
