// What a global restore of one generation does, in which order, and where each part goes: parts in the backup's
// dependency order (databases first, mail last), each generation server mapped to a server of this installation.

import type { SnapshotInfo } from '../../engine/index.js';
import type { DataLocation, HostDatabase, HostPort, HostServer } from '../../host/port.js';
import type { PartRecord, StoredGeneration } from '../generation/format.js';
import { TAG_ORDER } from '../generation/run.js';

export const DATABASE_TAGS: ReadonlySet<string> = new Set(['bm/pgsql', 'bm/pgsql-data']);

export interface GenerationServer {
  uid: string;
  /** The address it had when the generation was made (unknown for generations that did not record it). */
  address: string | null;
}

export interface ServerMapping {
  from: GenerationServer;
  to: HostServer;
  /** Given with --map-server (not the default same-address match). */
  explicit: boolean;
}

export interface UnmappedServer {
  from: GenerationServer;
  reason: string;
}

/** `OLD=NEW` pairs (uid or address on each side). Throws on a malformed one. */
export function parseServerMap(pairs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of pairs) {
    const m = /^([^=\s]+)=([^=\s]+)$/.exec(p.trim());
    if (!m) throw new Error(`--map-server expects OLD=NEW (a server uid or address on each side), got ${JSON.stringify(p)}`);
    if (out.has(m[1])) throw new Error(`--map-server maps ${m[1]} twice`);
    out.set(m[1], m[2]);
  }
  return out;
}

export function generationServers(g: StoredGeneration): GenerationServer[] {
  const byUid = new Map<string, GenerationServer>();
  for (const p of g.record.parts) {
    const known = byUid.get(p.server);
    byUid.set(p.server, { uid: p.server, address: known?.address ?? p.serverAddress ?? null });
  }
  return [...byUid.values()];
}

/**
 * Every generation server to a server of this installation: an explicit `OLD=NEW` first; otherwise the server
 * with the same address (BlueMind's rule), or the same uid when the generation recorded no address.
 */
export function mapServers(from: readonly GenerationServer[], targets: readonly HostServer[], explicit: ReadonlyMap<string, string>): { mapped: ServerMapping[]; unmapped: UnmappedServer[] } {
  const mapped: ServerMapping[] = [];
  const unmapped: UnmappedServer[] = [];
  const find = (key: string) => targets.find((t) => t.uid === key || t.address === key);
  for (const s of from) {
    const wanted = explicit.get(s.uid) ?? (s.address ? explicit.get(s.address) : undefined);
    if (wanted !== undefined) {
      const to = find(wanted);
      if (to) mapped.push({ from: s, to, explicit: true });
      else unmapped.push({ from: s, reason: `--map-server names ${wanted}, which is no server of this installation (${describeTargets(targets)})` });
      continue;
    }
    const to = s.address ? targets.find((t) => t.address === s.address) : targets.find((t) => t.uid === s.uid);
    if (to) mapped.push({ from: s, to, explicit: false });
    else {
      const same = targets.find((t) => t.uid === s.uid);
      unmapped.push({
        from: s,
        reason: same
          ? `server ${s.uid} was at ${s.address} and is at ${same.address} here: pass --map-server ${s.address}=${same.address}`
          : `no server of this installation has the address ${s.address ?? s.uid} of ${s.uid}: pass --map-server ${s.address ?? s.uid}=<server> (${describeTargets(targets)})`,
      });
    }
  }
  for (const key of explicit.keys()) {
    if (!from.some((s) => s.uid === key || s.address === key)) {
      unmapped.push({ from: { uid: key, address: null }, reason: `--map-server names ${key}, which is no server of the generation (${from.map((s) => `${s.uid} ${s.address ?? ''}`.trim()).join(', ')})` });
    }
  }
  return { mapped, unmapped };
}

function describeTargets(targets: readonly HostServer[]): string {
  return targets.map((t) => `${t.uid} at ${t.address}`).join(', ');
}

/** One part of the restore and where it goes. */
export interface PlannedPart {
  /** `server tag` of the generation: the key of the resumable state. */
  key: string;
  part: PartRecord;
  snapshot: SnapshotInfo;
  target: HostServer;
  kind: 'database' | 'tree';
  database?: HostDatabase;
  locations: DataLocation[];
}

export interface RestorePlan {
  parts: PlannedPart[];
  /** Parts that cannot be restored here, with why. */
  problems: string[];
  mapping: ServerMapping[];
  unmapped: UnmappedServer[];
}

function tagRank(tag: string): number {
  const i = TAG_ORDER.indexOf(tag);
  return i < 0 ? TAG_ORDER.length : i;
}

export async function planRestore(g: StoredGeneration, host: HostPort, explicit: ReadonlyMap<string, string>): Promise<RestorePlan> {
  const targets = await host.servers();
  const { mapped, unmapped } = mapServers(generationServers(g), targets, explicit);
  const databases = await host.databases();
  const parts: PlannedPart[] = [];
  const problems: string[] = [];
  const ordered = [...g.record.parts].sort((a, b) => tagRank(a.tag) - tagRank(b.tag));
  for (const part of ordered) {
    const key = `${part.server} ${part.tag}`;
    const m = mapped.find((x) => x.from.uid === part.server);
    if (!m) continue; // reported with the server
    const snapshot = g.partSnapshots.find((s) => (part.snapshot ? s.id === part.snapshot : s.server === part.server && s.tag === part.tag));
    if (!snapshot) {
      problems.push(`part ${key} has no snapshot in the repository (${part.status}: ${part.messages.join('; ') || 'not backed up'})`);
      continue;
    }
    if (DATABASE_TAGS.has(part.tag)) {
      const database = databases.find((d) => d.server === m.to.uid && d.tag === part.tag);
      if (!database) problems.push(`part ${key}: this installation has no ${part.tag} database on ${m.to.uid}`);
      else parts.push({ key, part, snapshot, target: m.to, kind: 'database', database, locations: [] });
      continue;
    }
    const locations = await host.dataLocations(m.to.uid, part.tag);
    if (locations.length === 0) problems.push(`part ${key}: this installation keeps no ${part.tag} data on ${m.to.uid}`);
    else parts.push({ key, part, snapshot, target: m.to, kind: 'tree', locations });
  }
  return { parts, problems, mapping: mapped, unmapped };
}

/** Address changes the restored configuration must follow. */
export function addressChanges(mapping: readonly ServerMapping[]): { from: string; to: string }[] {
  return mapping.filter((m) => m.from.address && m.from.address !== m.to.address).map((m) => ({ from: m.from.address!, to: m.to.address }));
}

/** Servers of the generation restored onto a server with another uid. */
export function uidChanges(mapping: readonly ServerMapping[]): { from: string; to: string }[] {
  return mapping.filter((m) => m.from.uid !== m.to.uid).map((m) => ({ from: m.from.uid, to: m.to.uid }));
}
