// What a generation saved of an entity's calendars, address books, task lists, notes and web-app data, beside what
// exists now: the containers, and a container's items with their summary and date. The restore browser and the
// command line list them so that one container or chosen items can be restored.

import type { HostPort, ItemSummary, SnapshotQuery } from '../../host/port.js';
import { clientQuery } from '../../host/query.js';
import type { Repository } from '../../engine/index.js';
import { withClient } from '../../pg/client.js';
import { containerExport } from '../../sources/pgsql-manifest.js';
import { NotFoundError } from '../errors.js';
import type { SavedContainer, SavedItem } from '../model.js';
import { DATABASE_TAG, type Catalog, type CatalogEntry } from './catalog.js';

/** Saved items of a container, by snapshot and export: paging through a calendar reads its export once. */
const itemCache = new Map<string, ItemSummary[]>();
const ITEM_CACHE_MAX = 50;

/** A read-only query on the live database (what still exists). */
async function live<T>(host: HostPort, fn: (q: SnapshotQuery) => Promise<T>): Promise<T> {
  const db = (await host.databases()).find((d) => d.tag === DATABASE_TAG);
  if (!db) throw new Error('the host has no directory database');
  return withClient(db.connection, (c) => fn(clientQuery(c)));
}

/** The entity's saved containers, each with whether it still exists. */
export async function savedContainers(host: HostPort, entry: CatalogEntry): Promise<SavedContainer[]> {
  const now = new Set(await live(host, async (q) => (await host.entityData.containers(q, entry.entity)).map((c) => c.uid)));
  return entry.containers.map((c) => ({ uid: c.uid, type: c.type, name: c.name, items: c.items, exists: now.has(c.uid) }));
}

/** A saved container's items, in the export's order, each with whether the live container still has it. */
export async function savedItems(env: { repo: Repository; host: HostPort }, catalog: Catalog, entry: CatalogEntry, containerUid: string): Promise<SavedItem[]> {
  const c = entry.containers.find((x) => x.uid === containerUid);
  if (!c) throw new NotFoundError(`${entry.displayName} has no container ${containerUid} in generation ${catalog.generation.id}`);
  const key = `${catalog.database.id}:${c.uid}`;
  let saved = itemCache.get(key);
  if (!saved) {
    saved = await env.host.renderer.summarize(c.type, containerExport(env.repo, catalog.database, catalog.manifest, c, env.host.entityData));
    if (itemCache.size >= ITEM_CACHE_MAX) itemCache.delete(itemCache.keys().next().value!);
    itemCache.set(key, saved);
  }
  const now = new Set(await live(env.host, (q) => env.host.entityData.itemUids(q, c.uid)));
  return saved.map((i) => ({ ...i, exists: now.has(i.uid) }));
}
