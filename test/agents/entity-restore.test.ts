import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerServer } from '../../plugin/server.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { KEYS, PG_BASE, testAuth } from '../http/harness.js';
import { parseAgents, partAgents } from '../../server/agent/config.js';
import { agentsValue, runningAgents, type AgentState } from '../../server/cli/reference-agents.js';
import type { PartAgents } from '../../server/dataprotect/generation/part-agents.js';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { restoredFolderName, runRestore, validate, type RestoreEnv } from '../../server/dataprotect/restore/operations/index.js';
import { CORE_SERVER, MAIL_SERVER, hostLayout } from '../../server/host/reference/layout.js';
import { runCli } from '../engine/cli-helpers.js';
import { fixture, mailboxOverImap, recordingContext, type Fixture, type ImapMessage } from '../restore/fixture.js';

// Single-entity restores that write a server's disks run on that server's node agent: a mailbox's messages on the
// mail server's agent (127.0.0.2), a domain's file hosting on the core's (127.0.0.1). The result is exact over IMAP
// and on disk; with the mail agent stopped, the restore fails saying which agent at which address.

const SECRET = randomBytes(32).toString('hex');

let f: Fixture;
let g: GenerationView;
let work: string;
let secretFile: string;
let agentEnv: NodeJS.ProcessEnv;
let saved: Map<string, ImapMessage[]>;
let user: { uid: string; login: string };

let app: FastifyInstance | undefined;
let reg: Awaited<ReturnType<typeof registerServer>> | undefined;
let databaseUrl: string | undefined;
const savedEnv: Record<string, string | undefined> = {};

/** The plugin's API with DP_AGENTS naming the running agents (read when the plugin starts). */
async function api(): Promise<FastifyInstance> {
  if (app) return app;
  const env = { DP_AGENTS: agentsValue(await agents()), DP_AGENT_SECRET_FILE: secretFile };
  for (const [k, v] of Object.entries(env)) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  databaseUrl = `${PG_BASE}/dp_test_agent_entity_${randomBytes(5).toString('hex')}`;
  app = Fastify();
  reg = await registerServer(
    { fastify: app, databaseUrl, auth: testAuth, defaultRepositoryLocation: f.repoDir, taskFilesDir: path.join(work, 'files'), nodeId: 'node-agent-entity', log: { info: () => {}, error: () => {} } },
    { installation: { port: f.host, productVersion: 'test', mailer: null } },
  );
  await app.ready();
  return app;
}

async function restoreTask(body: Record<string, unknown>): Promise<{ status: string; error?: string; result?: Record<string, unknown>; log: string }> {
  const a = await api();
  const started = await a.inject({ method: 'POST', url: '/api/dataprotect/restores', headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  expect(started.statusCode, started.body).toBe(202);
  const id = started.json().task.id as string;
  for (const end = Date.now() + 240_000; Date.now() < end; ) {
    const t = (await a.inject({ method: 'GET', url: `/api/dataprotect/tasks/${id}`, headers: { 'x-bm-apikey': KEYS.admin } })).json();
    if (t.status !== 'RUNNING') {
      const log = JSON.stringify((await a.inject({ method: 'GET', url: `/api/dataprotect/tasks/${id}/log`, headers: { 'x-bm-apikey': KEYS.admin } })).json());
      return { ...t, log };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`task ${id} did not finish`);
}

const cli = (args: string[]) => runCli([...args, '--host-root', f.sb.root, '--json'], { env: agentEnv });

async function agents(): Promise<AgentState[]> {
  return runningAgents(hostLayout(f.sb.root));
}

async function coordinatorAgents(): Promise<PartAgents> {
  return partAgents(parseAgents(agentsValue(await agents())), { DP_AGENT_SECRET_FILE: secretFile })!;
}

async function envWithAgents(): Promise<RestoreEnv> {
  return { ...f.env(), agents: await coordinatorAgents(), repositoryLocation: f.repoDir };
}

function strip(ms: ImapMessage[] | undefined) {
  return (ms ?? []).map(({ messageId, flags, internalDate, size }) => ({ messageId, flags, internalDate, size }));
}

async function hashTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out[path.relative(dir, p)] = createHash('sha256').update(await readFile(p)).digest('hex');
  }
  return out;
}

beforeAll(async () => {
  f = await fixture('agent_entity', 3);
  const [u] = await f.sql<{ uid: string; login: string }>(
    `SELECT e.entry_uid AS uid, u.login || '@' || c.uid AS login FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT 1`,
  );
  user = u;
  const c = await f.imap(user.login);
  saved = await mailboxOverImap(c);
  await c.logout();
  g = await f.backup(new Date('2026-01-06T02:00:00Z'));

  work = await mkdtemp(path.join(tmpdir(), 'dp-agent-entity-'));
  secretFile = path.join(work, 'agent.key');
  await writeFile(secretFile, SECRET + '\n');
  await chmod(secretFile, 0o600);
  const d = f.sb.db;
  agentEnv = {
    ...process.env, DATABASE_URL: `postgres://${d.user}@${d.host}:${d.port}/${d.database}`,
    DP_AGENT_SECRET_FILE: secretFile, DP_REPOSITORY_PASSWORD: '', DP_REPOSITORY_PASSWORD_FILE: '', DP_AGENTS: '',
  };
  const r = await cli(['host', 'agents', 'start']);
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  await app?.close();
  await reg?.close();
  if (databaseUrl) await dropDatabase(databaseUrl).catch(() => {});
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (f) await cli(['host', 'agents', 'stop']).catch(() => {});
  await f?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('single-entity restores on the node agents', () => {
  it("subfolder.mailbox runs on the mail server's agent and brings every saved message back under restored-<date>, exact over IMAP", async () => {
    const c = await f.imap(user.login);
    const lock = await c.getMailboxLock('INBOX');
    try {
      const uids = (await c.search({ all: true }, { uid: true })) as number[];
      await c.messageDelete(uids.slice(0, Math.ceil(uids.length / 2)).join(','), { uid: true });
    } finally {
      lock.release();
    }
    await c.logout();

    const env = await envWithAgents();
    const p = await f.plan(g, 'subfolder.mailbox', user.uid);
    await validate(env, p);
    const { ctx, log, progress } = recordingContext();
    const result = await runRestore(env, p, ctx);
    const mailAgent = (await agents()).find((a) => a.server === MAIL_SERVER)!;
    const total = [...saved.values()].reduce((n, x) => n + x.length, 0);
    expect(result).toMatchObject({ messages: total, alreadyPresent: 0, agent: '127.0.0.2' });
    expect(log[1]).toBe(`run by the agent of ${MAIL_SERVER} at ${mailAgent.url}`);
    // The agent's own lines reach the task's log, and its progress the task's.
    expect(log.join('\n')).toContain(`${total} of ${total} messages were restored`);
    expect(progress.at(-1)).toMatchObject({ done: total, total });
    const agentLog = await readFile(path.join(f.sb.root, 'agents', `${MAIL_SERVER}.log`), 'utf8');
    expect(agentLog).toContain(`restore subfolder.mailbox of USER`);
    expect(agentLog).toContain(`(${user.uid}): done`);
    expect(agentLog).not.toContain(SECRET);

    const c2 = await f.imap(user.login);
    const now = await mailboxOverImap(c2);
    await c2.logout();
    const base = restoredFolderName(g.time);
    for (const [folder, msgs] of saved) {
      const target = folder === 'INBOX' ? base : `${base}/${folder}`;
      expect(strip(now.get(target)), target).toEqual(strip(msgs));
    }
    // Run twice: the agent appends nothing twice.
    expect(await runRestore(env, p, recordingContext().ctx)).toMatchObject({ messages: 0, alreadyPresent: total });
  });

  it("restore.filehosting runs on the core's agent and puts the domain's files back exactly", async () => {
    const layout = hostLayout(f.sb.root);
    const domain = (await readdir(layout.filehosting)).sort()[0];
    const before = await hashTree(path.join(layout.filehosting, domain));
    expect(Object.keys(before).length).toBeGreaterThan(0);
    await rm(path.join(layout.filehosting, domain), { recursive: true });
    const env = await envWithAgents();
    const p = await f.plan(g, 'restore.filehosting', domain);
    await validate(env, p);
    const { ctx, log } = recordingContext();
    const result = await runRestore(env, p, ctx);
    const core = (await agents()).find((a) => a.server === CORE_SERVER)!;
    expect(result).toMatchObject({ domain, agent: '127.0.0.1' });
    expect(log).toContain(`run by the agent of ${CORE_SERVER} at ${core.url}`);
    expect(await hashTree(path.join(layout.filehosting, domain))).toEqual(before);
    expect(await readFile(path.join(f.sb.root, 'agents', `${CORE_SERVER}.log`), 'utf8')).toContain('restore restore.filehosting of DOMAIN');
  });

  it("refuses a mailbox outside its server's spool, and another server's restore", async () => {
    const mail = (await agents()).find((a) => a.server === MAIL_SERVER)!;
    const p = await f.plan(g, 'subfolder.mailbox', user.uid);
    const loc = (await f.host.mailboxLocation(p.entry.entity))!;
    const call = (body: Record<string, unknown>) => fetch(`${mail.url}/v1/restores/entity`, {
      method: 'POST', headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        repository: f.repoDir, generation: g.id, server: MAIL_SERVER, operation: 'replace.mailbox',
        entry: { kind: 'USER', uid: user.uid, domainUid: p.entry.domainUid, displayName: 'x', deleted: false, entity: p.entry.entity }, mailbox: loc, ...body,
      }),
    });
    const outside = await call({ mailbox: { ...loc, maildir: path.join(work, 'elsewhere') } });
    expect(outside.status).toBe(409);
    expect(((await outside.json()) as { error: string }).error).toMatch(/not a mailbox in a data location of mail\/imap on bm-mail/);
    const climbing = await call({ mailbox: { ...loc, partPath: `${loc.partPath}/../../../etc`, maildir: path.join(loc.maildir, '../../../etc') } });
    expect(climbing.status).toBe(409);
    expect((await call({ server: CORE_SERVER })).status).toBe(409);
    expect((await call({ operation: 'replace.calendars' })).status).toBe(400);
    const unauthenticated = await fetch(`${mail.url}/v1/restores/entity`, { method: 'POST', body: '{}' });
    expect(unauthenticated.status).toBe(401);
  });

  it("replace.mailbox as a task of the plugin's API: the spool swap and resync run on the mail server's agent, the mailbox is what was saved", async () => {
    const mailAgent = (await agents()).find((a) => a.server === MAIL_SERVER)!;
    const p = await f.plan(g, 'replace.mailbox', user.uid);
    const t = await restoreTask({ operation: 'replace.mailbox', generationId: g.id, entity: { kind: 'USER', uid: user.uid, domainUid: p.entry.domainUid } });
    expect(t.status, t.error).toBe('SUCCEEDED');
    expect(t.result).toMatchObject({ agent: '127.0.0.2' });
    expect(t.log).toContain(`run by the agent of ${MAIL_SERVER} at ${mailAgent.url}`);
    expect(t.log).toContain('back in the spool, index resynchronised');
    expect(t.log).not.toContain(SECRET);
    expect(await readFile(path.join(f.sb.root, 'agents', `${MAIL_SERVER}.log`), 'utf8')).toContain('restore replace.mailbox of USER');
    const c = await f.imap(user.login);
    const now = await mailboxOverImap(c);
    await c.logout();
    expect([...now.keys()].sort()).toEqual([...saved.keys()].sort());
    for (const [folder, msgs] of saved) expect(strip(now.get(folder)), folder).toEqual(strip(msgs));
  });

  it("undelete.mail runs on the mail server's agent: a message deleted since the generation comes back under restored-<today>", async () => {
    const c = await f.imap(user.login);
    const lock = await c.getMailboxLock('INBOX');
    let gone: string;
    try {
      const [first] = (await c.search({ all: true }, { uid: true })) as number[];
      const m = await c.fetchOne(String(first), { envelope: true }, { uid: true });
      gone = (m && m.envelope?.messageId) || '';
      await c.messageDelete(String(first), { uid: true });
    } finally {
      lock.release();
    }
    await c.logout();
    expect(gone).toBeTruthy();
    const env = await envWithAgents();
    const p = await f.plan(g, 'undelete.mail', user.uid, { from: new Date(g.time.getTime() - 86_400_000), to: new Date(g.time.getTime() + 86_400_000) });
    await validate(env, p);
    const { ctx, log } = recordingContext();
    const result = await runRestore(env, p, ctx);
    expect(result).toMatchObject({ messages: 1, agent: '127.0.0.2' });
    expect(log.join('\n')).toContain(`run by the agent of ${MAIL_SERVER} at http://127.0.0.2:`);
    const c2 = await f.imap(user.login);
    const now = await mailboxOverImap(c2);
    await c2.logout();
    expect(now.get(result.folder as string)?.map((m) => m.messageId)).toEqual([gone]);
  });

  it('`entity restore` on the command line uses the running reference agents', async () => {
    const c = await f.imap(user.login);
    await c.mailboxDelete('Sent');
    await c.logout();
    const r = await runCli(['entity', 'restore', '--repo', f.repoDir, g.id, '--entity', user.uid, '--op', 'restore.mail.folder', '--folder', 'Sent', '--host-root', f.sb.root, '--json'], { env: agentEnv });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`run by the agent of ${MAIL_SERVER} at http://127.0.0.2:`);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { result: Record<string, unknown> };
    expect(summary.result).toMatchObject({ agent: '127.0.0.2', messages: saved.get('Sent')!.length });
    const c2 = await f.imap(user.login);
    const now = await mailboxOverImap(c2);
    await c2.logout();
    expect(strip(now.get('Sent'))).toEqual(strip(saved.get('Sent')));
  });

  it('with the mail agent stopped, the restore fails naming the server and the agent address; nothing is written', async () => {
    const env = await envWithAgents();
    const mail = (await agents()).find((a) => a.server === MAIL_SERVER)!;
    process.kill(mail.pid, 'SIGTERM');
    for (let i = 0; i < 200 && (await agents()).some((a) => a.server === MAIL_SERVER); i++) await new Promise((r) => setTimeout(r, 50));
    const c = await f.imap(user.login);
    const before = await mailboxOverImap(c);
    await c.logout();
    const p = await f.plan(g, 'restore.mail.folder', user.uid, { folder: 'INBOX' });
    await expect(runRestore(env, p, recordingContext().ctx)).rejects.toThrow(
      new RegExp(`the agent of ${MAIL_SERVER} at ${mail.url.replace(/[.]/g, '\\.')} is unreachable \\(ECONNREFUSED\\); nothing was restored: start the agent on ${MAIL_SERVER}`),
    );
    // As a task: FAILED with the same reason (no 500), nothing written.
    const t = await restoreTask({ operation: 'subfolder.mailbox', generationId: g.id, entity: { kind: 'USER', uid: user.uid, domainUid: p.entry.domainUid } });
    expect(t.status).toBe('FAILED');
    expect(t.error).toMatch(new RegExp(`the agent of ${MAIL_SERVER} at ${mail.url.replace(/[.]/g, '\\.')} is unreachable`));
    const c2 = await f.imap(user.login);
    expect(await mailboxOverImap(c2)).toEqual(before);
    await c2.logout();
  });
});
