// The prerequisites of a global restore, each met / not met / warning with what to do. Reads the repository and
// looks at the installation; writes nothing anywhere.

import { walkTree, type Repository } from '../../engine/index.js';
import type { InstallationPort } from '../../host/installation.js';
import { findGeneration, isRecoveryPoint, type StoredGeneration } from '../generation/format.js';
import { assertReadableFormat, productCompatibility, UnreadableGenerationError } from './compatibility.js';
import type { HostServer } from '../../host/port.js';
import { planRestore, type GenerationServer, type RestorePlan } from './plan.js';
import { readState } from './state.js';
import { databaseContent, databaseDirectory, directoryContent, freeBytes } from './targets.js';

export type PrerequisiteStatus = 'met' | 'not-met' | 'warning';

export interface Prerequisite {
  id: 'generation' | 'format' | 'repository' | 'product' | 'servers' | 'parts' | 'databases' | 'directories' | 'space' | 'resume';
  status: PrerequisiteStatus;
  message: string;
  /** What to do when it is not met (or to lift a warning). */
  advice?: string;
}

/** A server of the generation and where the restore puts it (null: nowhere yet, `problem` says why). */
export interface ServerPlacement {
  from: GenerationServer;
  to: HostServer | null;
  explicit: boolean;
  problem: string | null;
}

export interface GlobalRestoreCheck {
  generation: string;
  ok: boolean;
  prerequisites: Prerequisite[];
  servers: ServerPlacement[];
  /** The servers of this installation, to map onto. */
  targetServers: HostServer[];
  /** What the targets hold (empty: the installation is blank); null when not looked at. */
  content: string[] | null;
}

export interface CheckOptions {
  repo: Repository;
  installation: InstallationPort;
  generation: string;
  servers?: ReadonlyMap<string, string>;
  /** The run will wipe the installation: content in the targets is then only a warning. */
  wipe?: boolean;
}

export async function checkGlobalRestore(o: CheckOptions): Promise<GlobalRestoreCheck> {
  const out: Prerequisite[] = [];
  const g = await findGeneration(o.repo, o.generation);
  const id = g.record.id;
  let placements: ServerPlacement[] = [];
  let content: string[] | null = null;
  const targetServers = await o.installation.host.servers();
  const done = (): GlobalRestoreCheck => ({ generation: id, ok: out.every((p) => p.status !== 'not-met'), prerequisites: out, servers: placements, targetServers, content });

  try {
    assertReadableFormat(g.record);
    out.push({ id: 'format', status: 'met', message: `generation format version ${g.record.formatVersion} is readable by this program` });
  } catch (e) {
    if (!(e instanceof UnreadableGenerationError)) throw e;
    out.push({ id: 'format', status: 'not-met', message: e.message, advice: 'install the bm-dataprotect version that wrote this generation, or a later one' });
    return done();
  }

  out.push(generationValidity(g));
  out.push({ id: 'product', ...productCompatibility(g.record.productVersion, o.installation.productVersion) });

  const plan = await planRestore(g, o.installation.host, o.servers ?? new Map());
  out.push(servers(plan));
  placements = [
    ...plan.mapping.map((m) => ({ from: m.from, to: m.to, explicit: m.explicit, problem: null })),
    ...plan.unmapped.map((u) => ({ from: u.from, to: null, explicit: false, problem: u.reason })),
  ];
  if (plan.problems.length) out.push({ id: 'parts', status: 'not-met', message: plan.problems.join('; '), advice: 'restore on an installation with the same roles per server, or map the servers with --map-server' });
  out.push(await packsNeeded(o.repo, plan));

  const found = await targetContent(plan);
  content = [...found.databases, ...found.directories];
  const state = await readState(o.installation.stateDir);
  if (state && !state.finishedAt && state.generation === id) {
    out.push({ id: 'resume', status: 'met', message: `an interrupted restore of this generation is resumed: ${state.done.length} part(s) already finished (${state.done.join(', ') || 'none'})` });
  } else {
    if (state && !state.finishedAt) {
      out.push({
        id: 'resume', status: o.wipe ? 'warning' : 'not-met',
        message: `an interrupted restore of generation ${state.generation} was not finished`,
        advice: o.wipe ? 'the wipe removes what it restored' : `run it again with generation ${state.generation}, or restore this one with --wipe`,
      });
    }
    out.push(...emptiness(found, Boolean(o.wipe)));
  }
  out.push(await space(plan));
  return done();
}

function generationValidity(g: StoredGeneration): Prerequisite {
  const r = g.record;
  if (isRecoveryPoint(r)) {
    return {
      id: 'generation', status: 'not-met', message: `generation ${r.id} is a mail recovery point: it holds the mail alone, not the installation`,
      advice: 'choose a nightly generation (a mail recovery point restores mail from the restore browser)',
    };
  }
  if (g.interrupted) return { id: 'generation', status: 'not-met', message: `generation ${r.id} is incomplete: its run did not finish`, advice: 'choose another generation' };
  const bad = r.parts.filter((p) => p.status !== 'VALID');
  if (r.status === 'VALID') return { id: 'generation', status: 'met', message: `generation ${r.id} of ${r.protectionTime} is VALID (${r.parts.length} parts)` };
  const detail = bad.map((p) => `${p.server} ${p.tag} ${p.status}${p.messages.length ? ` (${p.messages[0]})` : ''}`).join('; ');
  if (r.status === 'UNKNOWN') return { id: 'generation', status: 'warning', message: `generation ${r.id} is UNKNOWN: ${detail}`, advice: 'some files changed while they were read; a VALID generation is safer' };
  return { id: 'generation', status: 'not-met', message: `generation ${r.id} is INVALID: ${detail}`, advice: 'choose a VALID generation' };
}

function servers(plan: RestorePlan): Prerequisite {
  const lines = plan.mapping.map((m) => `${m.from.uid}${m.from.address ? ` (${m.from.address})` : ''} → ${m.to.uid} (${m.to.address})${m.explicit ? ' by --map-server' : ''}`);
  if (plan.unmapped.length) {
    return { id: 'servers', status: 'not-met', message: plan.unmapped.map((u) => u.reason).join('; '), advice: 'map every server of the generation with --map-server OLD=NEW' };
  }
  return { id: 'servers', status: 'met', message: `every server is mapped: ${lines.join(', ')}` };
}

/** The structural check of what this generation needs: every tree reads, every data blob is indexed in a pack that is there and long enough. */
async function packsNeeded(repo: Repository, plan: RestorePlan): Promise<Prerequisite> {
  const problems: string[] = [];
  const needed = new Map<string, number>();
  let blobs = 0;
  for (const p of plan.parts) {
    try {
      for await (const { path, node } of walkTree(repo, p.snapshot.tree)) {
        for (const id of node.content ?? []) {
          try {
            const loc = repo.blobLocation(id);
            needed.set(loc.pack, Math.max(needed.get(loc.pack) ?? 0, loc.offset + loc.length));
            blobs++;
          } catch (e) {
            if (problems.length < 10) problems.push(`${p.key} ${path}: ${(e as Error).message}`);
          }
        }
      }
    } catch (e) {
      problems.push(`${p.key}: ${(e as Error).message}`);
    }
  }
  for (const [pack, end] of needed) {
    const size = await repo.packSize(pack);
    if (size === null) problems.push(`pack ${pack.slice(0, 12)} is missing`);
    else if (size < end) problems.push(`pack ${pack.slice(0, 12)} is truncated at ${size} of at least ${end} bytes`);
  }
  if (problems.length) return { id: 'repository', status: 'not-met', message: `the repository is damaged for this generation: ${problems.slice(0, 10).join('; ')}`, advice: 'run `bm-dataprotect check --read-data`, then choose another generation' };
  return { id: 'repository', status: 'met', message: `the ${needed.size} pack(s) holding the generation's ${blobs} data blobs are present and whole` };
}

/** What the databases and directories the plan writes hold now. */
async function targetContent(plan: RestorePlan): Promise<{ databases: string[]; directories: string[] }> {
  const databases: string[] = [];
  const directories: string[] = [];
  for (const p of plan.parts) {
    if (p.database) {
      const c = await databaseContent(p.database.connection);
      if (c) databases.push(c);
    }
    for (const l of p.locations) {
      const c = await directoryContent(l.fsPath);
      if (c) directories.push(c);
    }
  }
  return { databases, directories };
}

function emptiness(found: { databases: string[]; directories: string[] }, wipe: boolean): Prerequisite[] {
  const verdict = (id: 'databases' | 'directories', found: string[], what: string): Prerequisite =>
    found.length === 0
      ? { id, status: 'met', message: `the target ${what} are empty or absent` }
      : wipe
        ? { id, status: 'warning', message: `not empty, the wipe removes it: ${found.join('; ')}` }
        : { id, status: 'not-met', message: `this installation is not blank: ${found.join('; ')}`, advice: 'restore onto a blank installation, or wipe its data first (--wipe)' };
  return [verdict('databases', found.databases, 'databases'), verdict('directories', found.directories, 'directories')];
}

async function space(plan: RestorePlan): Promise<Prerequisite> {
  // Per filesystem (keyed by its free-byte figure's directory): what the parts put there.
  const need = new Map<string, { free: number; bytes: number }>();
  const add = async (dir: string, bytes: number) => {
    const free = await freeBytes(dir);
    const key = `${free}`;
    const e = need.get(key) ?? { free, bytes: 0 };
    e.bytes += bytes;
    need.set(key, e);
  };
  const unknown: string[] = [];
  for (const p of plan.parts) {
    const bytes = p.snapshot.summary.bytesTotal;
    if (p.database) {
      const dir = await databaseDirectory(p.database.connection);
      // A restored database takes about what its dump holds, plus its indexes.
      if (dir) await add(dir, Math.ceil(bytes * 1.5));
      else unknown.push(p.key);
    } else {
      const per = Math.ceil(bytes / p.locations.length);
      for (const l of p.locations) await add(l.fsPath, per);
    }
  }
  const short = [...need.values()].filter((e) => e.bytes > e.free);
  const total = [...need.values()].reduce((n, e) => n + e.bytes, 0);
  if (short.length) {
    return { id: 'space', status: 'not-met', message: `not enough free space: ${short.map((e) => `${mib(e.bytes)} needed, ${mib(e.free)} free`).join('; ')}`, advice: 'free some space or grow the filesystems' };
  }
  if (unknown.length) return { id: 'space', status: 'warning', message: `${mib(total)} fit; the room for ${unknown.join(', ')} could not be measured (database server elsewhere)` };
  return { id: 'space', status: 'met', message: `${mib(total)} to restore, enough free space` };
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}
