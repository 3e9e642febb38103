// Calendars, address books, todolists, notes and web-app data: replaced from their lossless exports (all of an
// entity's of a type, one container, or chosen items, each replacing or adding what is missing), or sent as ICS / VCF.

import type { ContainerRestoreOptions, ContainerType } from '../../../host/port.js';
import { containerExport, type ExportedContainer } from '../../../sources/pgsql-manifest.js';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import { checkCancel, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';

function containersOf(p: PlannedRestore, type: ContainerType) {
  return p.entry.containers.filter((c) => c.type === type);
}

/** The container a `*.container` or `*.items` restore names, as the generation saved it. */
export function chosenContainer(p: PlannedRestore): ExportedContainer {
  const c = p.entry.containers.find((x) => x.uid === p.container);
  if (!c) throw new NotFoundError(`${p.entry.displayName} has no container ${p.container ?? ''} in generation ${p.catalog.generation.id}`);
  return c;
}

/** One container, or chosen items of it: replaced by their saved state, or only what is missing added back. */
export async function restoreChosen(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext, mode: ContainerRestoreOptions['mode'], scope: 'container' | 'items'): Promise<Record<string, unknown>> {
  const c = chosenContainer(p);
  const items = scope === 'items' ? p.itemUids ?? [] : undefined;
  ctx.progress({ done: 0, total: items ? items.length : c.items, unit: 'items' });
  checkCancel(ctx);
  const r = await env.host.writers.database.restoreContainer(containerExport(env.repo, p.catalog.database, p.catalog.manifest, c, env.host.entityData), { mode, items });
  ctx.progress({ done: r.items + r.skipped, total: items ? items.length : c.items, unit: 'items' });
  // Counts say what happened: how many came back, how many still existed and were left as they are now.
  const name = c.name || c.uid;
  ctx.info(`${name}: ${r.items} ${r.items === 1 ? 'item' : 'items'} restored`, { key: 'task.line.items.restored', params: { container: name, count: r.items } });
  if (r.skipped) {
    ctx.info(`${name}: ${r.skipped} ${r.skipped === 1 ? 'item was still there and left as it is' : 'items were still there and left as they are'}`, {
      key: 'task.line.items.kept',
      params: { container: name, count: r.skipped },
    });
  }
  if (r.absent.length) ctx.warn(`not in the generation: ${r.absent.join(', ')}`);
  return { container: c.uid, items: r.items, skipped: r.skipped, absent: r.absent };
}

export async function replaceContainers(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext, type: ContainerType): Promise<Record<string, unknown>> {
  const list = containersOf(p, type);
  const total = list.reduce((n, c) => n + c.items, 0);
  ctx.progress({ done: 0, total, unit: 'items' });
  let done = 0;
  const restored: { uid: string; items: number }[] = [];
  for (const c of list) {
    checkCancel(ctx);
    const r = await env.host.writers.database.replaceContainer(containerExport(env.repo, p.catalog.database, p.catalog.manifest, c, env.host.entityData));
    done += r.items;
    restored.push({ uid: c.uid, items: r.items });
    ctx.info(`${c.uid} (${c.name}): ${r.items} items`);
    ctx.progress({ done, total, unit: 'items' });
  }
  if (list.length === 0) ctx.warn(`the generation holds no ${type} of ${p.entry.displayName}`);
  return { containers: restored, items: done };
}

function fileName(name: string, ext: string, used: Set<string>): string {
  let base = name.normalize('NFKD').replace(/[^A-Za-z0-9._ ()-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 150) || 'export';
  let n = 1;
  let out = `${base}.${ext}`;
  while (used.has(out)) out = `${base} (${++n}).${ext}`;
  used.add(out);
  return out;
}

/** Who receives a send.* export: the one asked for, else the user (user entities), else the administrator. */
export function sendRecipient(p: PlannedRestore): string | null {
  if (p.recipient) return p.recipient;
  if (p.entry.kind === 'USER' && p.entry.email) return p.entry.email;
  return p.actor.email;
}

export async function sendExports(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext, type: ContainerType): Promise<Record<string, unknown>> {
  const to = sendRecipient(p);
  if (!to) throw new InvalidInputError('recipient', 'nobody to send the export to: give a recipient');
  const list = containersOf(p, type);
  const ext = type === 'addressbook' ? 'vcf' : 'ics';
  const contentType = type === 'addressbook' ? 'text/vcard; charset=utf-8' : 'text/calendar; charset=utf-8';
  const used = new Set<string>();
  const attachments: { filename: string; content: string; contentType: string }[] = [];
  for (const [i, c] of list.entries()) {
    checkCancel(ctx);
    const text = await env.host.renderer.render(type, containerExport(env.repo, p.catalog.database, p.catalog.manifest, c, env.host.entityData));
    const filename = fileName(c.name || c.uid, ext, used);
    attachments.push({ filename, content: text, contentType });
    await ctx.attach(filename, text, contentType);
    ctx.progress({ done: i + 1, total: list.length, unit: 'containers' });
  }
  if (attachments.length === 0) throw new NotFoundError(`the generation holds no ${type} of ${p.entry.displayName}`);
  const what = type === 'addressbook' ? 'address books' : type === 'todolist' ? 'task lists' : 'calendars';
  const date = p.catalog.generation.time.toISOString().slice(0, 10);
  await env.mailer!.send({
    from: `no-reply@${p.entry.domainUid}`,
    to,
    subject: `Backup of ${p.entry.displayName}'s ${what} (${date})`,
    text: `A backup of the ${what} of ${p.entry.displayName}, as saved on ${date}, is attached to this message.\n`,
    attachments,
  });
  ctx.info(`sent ${attachments.map((a) => a.filename).join(', ')} to ${to}`);
  return { recipient: to, files: attachments.map((a) => a.filename) };
}
