// Single-entity restores that write a server's disks (a mailbox's spool, its messages, a domain's file hosting) run
// on the node agent of the server that holds that data, when the installation has agents. The coordinator keeps
// the directory side (the plan, the checks, the audit); the agent reads the repository itself and runs the same
// operation code against its own filesystem and mail server. Without agents, the coordinator runs them itself.

import type { HostPort, MailboxLocation } from '../../../host/port.js';
import type { EntityRestoreRequest, PartAgent, PartAgents } from '../../generation/part-agents.js';
import type { ExportedEntity } from '../../../sources/pgsql-manifest.js';
import type { RestoreOperationId } from '../../restore-capabilities.js';
import type { Catalog, CatalogEntry } from '../catalog.js';
import { RepositoryGenerationParts } from '../generation-parts.js';
import { FILEHOSTING_TAG, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';

/** The operations whose whole work is on one server's disks (and its mail server), never in the core's database. */
export const AGENT_OPERATIONS: ReadonlySet<RestoreOperationId> = new Set<RestoreOperationId>([
  'subfolder.mailbox', 'restore.mail.folder', 'restore.mail.messages', 'replace.mailbox', 'undelete.mail', 'restore.filehosting',
]);

/** Where a delegated restore goes: the agent, its server, and what the coordinator resolved for it. */
export interface AgentTarget {
  agent: PartAgent;
  server: { uid: string; address: string };
  mailbox?: MailboxLocation;
}

/** The agent that runs this restore, or null when the coordinator runs it (no agents, or none for that server). */
export async function agentFor(env: RestoreEnv, p: PlannedRestore): Promise<AgentTarget | null> {
  if (!env.agents || !AGENT_OPERATIONS.has(p.operation)) return null;
  let uid: string | undefined;
  let mailbox: MailboxLocation | undefined;
  if (p.operation === 'restore.filehosting') {
    uid = p.catalog.generation.parts.find((x) => x.tag === FILEHOSTING_TAG)?.server;
  } else {
    mailbox = (await env.host.mailboxLocation(p.entry.entity)) ?? undefined;
    uid = mailbox?.server;
  }
  if (!uid) return null;
  const server = (await env.host.servers()).find((s) => s.uid === uid);
  const agent = server ? env.agents(server) : null;
  if (!server || !agent?.restoreEntity) return null;
  return { agent, server, mailbox };
}

/** The request the agent is sent: what it cannot read from the repository itself. */
export function entityRequest(env: RestoreEnv, p: PlannedRestore, t: AgentTarget): EntityRestoreRequest {
  const { containers: _containers, ...entity } = p.entry.entity;
  return {
    repository: env.repositoryLocation ?? env.repo.location,
    generation: p.catalog.generation.id,
    server: t.server.uid,
    operation: p.operation,
    entry: { kind: p.entry.kind, uid: p.entry.uid, domainUid: p.entry.domainUid, displayName: p.entry.displayName, deleted: p.entry.deleted, entity: entity as unknown as Record<string, unknown> },
    ...(t.mailbox ? { mailbox: t.mailbox } : {}),
    ...(p.folder !== undefined ? { folder: p.folder } : {}),
    ...(p.messageIds ? { messageIds: p.messageIds } : {}),
    ...(p.from ? { from: p.from.toISOString() } : {}),
    ...(p.to ? { to: p.to.toISOString() } : {}),
  };
}

/** The coordinator's side: the restore runs on the agent; its progress and log lines become the task's. */
export async function runOnAgent(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext, t: AgentTarget): Promise<Record<string, unknown>> {
  // The coordinator's own backup process is no other server's agent: nothing to tell.
  if (!t.agent.local) ctx.info(`run by the agent of ${t.server.uid} at ${t.agent.endpoint}`, { key: 'task.line.restore.agent', params: { server: t.server.uid, url: t.agent.endpoint } });
  return t.agent.restoreEntity!(entityRequest(env, p, t), {
    progress: (x) => ctx.progress(x),
    log: (level, message, phrase) => (level === 'warn' ? ctx.warn(message, phrase) : ctx.info(message, phrase)),
    signal: ctx.signal,
  });
}

/**
 * The agent's side: the planned restore rebuilt from the request and the repository, over a host whose mailbox
 * lookup answers what the coordinator resolved (the directory is the coordinator's, not this server's).
 */
export async function plannedOnAgent(env: RestoreEnv, r: EntityRestoreRequest): Promise<{ env: RestoreEnv; plan: PlannedRestore }> {
  const generation = await new RepositoryGenerationParts(async () => env.repo).get(r.generation);
  const entity = { ...(r.entry.entity as unknown as ExportedEntity), containers: [] };
  const entry: CatalogEntry = {
    kind: r.entry.kind as CatalogEntry['kind'], uid: r.entry.uid, domainUid: r.entry.domainUid, displayName: r.entry.displayName, deleted: r.entry.deleted,
    entity, containers: [],
  };
  const mailbox = r.mailbox ?? null;
  const host = new Proxy(env.host, {
    get(target, key) {
      if (key === 'mailboxLocation') return async () => mailbox;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as HostPort;
  const plan: PlannedRestore = {
    operation: r.operation as RestoreOperationId, entry,
    // Only the generation is read by these operations; the database part stays the coordinator's.
    catalog: { generation } as Catalog,
    folder: r.folder, messageIds: r.messageIds,
    from: r.from ? new Date(r.from) : undefined, to: r.to ? new Date(r.to) : undefined,
    actor: { login: 'coordinator', email: null },
  };
  return { env: { ...env, host, agents: undefined }, plan };
}
