// What a generation holds for single restores: its entities (read from the database part's manifest, which the
// backup wrote from the same snapshot as the dump), flagged deleted when the live directory no longer has them,
// with their organisational-unit uids for manageRestore limited to some units.

import type { Repository, SnapshotInfo } from '../../engine/index.js';
import { withClient } from '../../pg/client.js';
import type { DirectoryEntity, HostPort } from '../../host/port.js';
import { clientQuery } from '../../host/query.js';
import { readManifest, readManifestFor, type ExportedContainer, type ExportedEntity, type PgManifest } from '../../sources/pgsql-manifest.js';
import { NotFoundError } from '../errors.js';
import { restorableKindOf, type Restorable } from '../model.js';
import { partSnapshot, type GenerationView } from './generation-parts.js';

export const DATABASE_TAG = 'bm/pgsql';

/** One restorable entity of a generation, with what the operations need. */
export interface CatalogEntry extends Restorable {
  /** The directory entity as saved (the domain for ADDRESSBOOK / CALENDAR entries). */
  entity: ExportedEntity;
  /** The containers the entry's operations act on. */
  containers: ExportedContainer[];
}

export interface Catalog {
  generation: GenerationView;
  database: SnapshotInfo;
  /** The part's manifest; in a catalog of one entity (`loadEntityCatalog`), with only the entities it needs. */
  manifest: PgManifest;
  /** Every restorable entity of the generation, or the one asked for (`loadEntityCatalog`). */
  entries: CatalogEntry[];
  byUid: Map<string, CatalogEntry>;
}

/** Catalog entries by generation, kept a little while: paging through 10,000 entities must not re-read them. */
const cache = new Map<string, { at: number; catalog: Promise<Catalog> }>();
const TTL_MS = 15_000;

export function forgetCatalogs(): void {
  cache.clear();
}

export async function loadCatalog(repo: Repository, host: HostPort, g: GenerationView): Promise<Catalog> {
  const key = `${g.id}:${g.parts.map((p) => p.snapshot.id).join(',')}`;
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < TTL_MS) return hit.catalog;
  const catalog = buildCatalog(repo, host, g);
  cache.set(key, { at: Date.now(), catalog });
  catalog.catch(() => cache.delete(key));
  for (const [k, v] of cache) if (Date.now() - v.at > TTL_MS) cache.delete(k);
  return catalog;
}

/**
 * The catalog of one entity (an empty one when the generation does not hold it): what a restore of that entity
 * needs, read without going through the whole directory, so that it takes as long on a large installation
 * as on a small one (only the entity's line of the manifest is parsed, only its own live state is asked).
 */
export async function loadEntityCatalog(repo: Repository, host: HostPort, g: GenerationView, uid: string): Promise<Catalog> {
  return buildCatalog(repo, host, g, uid);
}

async function buildCatalog(repo: Repository, host: HostPort, g: GenerationView, only?: string): Promise<Catalog> {
  const database = partSnapshot(g, DATABASE_TAG);
  if (!database) throw new NotFoundError(`generation ${g.id} has no ${DATABASE_TAG} part: it holds no entities to restore`);
  const manifest = only === undefined ? await readManifest(repo, database) : await readManifestFor(repo, database, only);
  const wanted = (uid: string) => only === undefined || uid === only;

  // The live directory and containers, once per call (not once per row); for one entity, only its own.
  const liveUids = new Set<string>();
  const liveContainers = new Set<string>();
  const db = (await host.databases()).find((d) => d.tag === DATABASE_TAG);
  if (only === undefined) {
    for (const d of await host.directory.domains()) for (const e of await host.directory.entities(d.uid)) liveUids.add(`${e.domainUid}/${e.uid}`);
  } else {
    for (const e of manifest.entities) if (e.uid === only && (await host.directory.entity(e.domainUid, e.uid))) liveUids.add(`${e.domainUid}/${e.uid}`);
  }
  const domainsWanted = manifest.entities.filter((e) => e.kind === 'DOMAIN' && (only === undefined || e.containers.some((c) => c.uid === only)));
  if (db && domainsWanted.length) {
    await withClient(db.connection, async (c) => {
      const q = clientQuery(c);
      for (const owner of domainsWanted) {
        for (const cont of await host.entityData.containers(q, owner)) liveContainers.add(cont.uid);
      }
    });
  }

  // OU uids by (domain, path of names), for the scope of OU-limited administrators.
  const ouUid = new Map<string, string>();
  for (const e of manifest.entities) if (e.kind === 'ORG_UNIT') ouUid.set(`${e.domainUid}/${[...e.ouPath, e.name].join('/')}`, e.uid);
  const ouUids = (domainUid: string, names: string[]) =>
    names.map((_, i) => ouUid.get(`${domainUid}/${names.slice(0, i + 1).join('/')}`)).filter((x): x is string => Boolean(x));

  const entries: CatalogEntry[] = [];
  for (const e of manifest.entities) {
    const kind = restorableKindOf(e.kind);
    if (kind && wanted(e.uid)) {
      entries.push({
        kind, uid: e.uid, domainUid: e.domainUid, displayName: e.displayName, email: e.email,
        orgUnitPath: kind === 'OU' ? ouUids(e.domainUid, [...e.ouPath, e.name]) : ouUids(e.domainUid, e.ouPath),
        deleted: !liveUids.has(`${e.domainUid}/${e.uid}`),
        entity: e, containers: e.containers,
      });
    }
    // A domain's own calendars and address books are entities of their own (BlueMind's CALENDAR / ADDRESSBOOK).
    if (e.kind === 'DOMAIN') {
      for (const c of e.containers) {
        if ((c.type !== 'calendar' && c.type !== 'addressbook') || !wanted(c.uid)) continue;
        entries.push({
          kind: c.type === 'calendar' ? 'CALENDAR' : 'ADDRESSBOOK', uid: c.uid, domainUid: e.domainUid, displayName: c.name, email: null,
          orgUnitPath: [], deleted: !liveContainers.has(c.uid), entity: e, containers: [c],
        });
      }
    }
  }
  entries.sort((a, b) => a.displayName.localeCompare(b.displayName) || (a.uid < b.uid ? -1 : 1));
  return { generation: g, database, manifest, entries, byUid: new Map(entries.map((x) => [x.uid, x])) };
}

export function publicEntry(e: CatalogEntry): Restorable {
  return { kind: e.kind, uid: e.uid, domainUid: e.domainUid, displayName: e.displayName, email: e.email ?? null, orgUnitPath: e.orgUnitPath ?? [], deleted: e.deleted };
}
