import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerServer } from '../../plugin/server.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { KEYS, PG_BASE, testAuth } from '../http/harness.js';
import { httpPartAgent } from '../../server/agent/client.js';
import { parseAgents, partAgents } from '../../server/agent/config.js';
import { agentsValue, runningAgents, type AgentState } from '../../server/cli/reference-agents.js';
import { runGeneration, type GenerationRunResult } from '../../server/dataprotect/generation/run.js';
import type { PartAgents } from '../../server/dataprotect/generation/part-agents.js';
import { runGlobalRestore } from '../../server/dataprotect/global-restore/run.js';
import { forgetCatalogs, loadCatalog } from '../../server/dataprotect/restore/catalog.js';
import { RepositoryGenerationParts } from '../../server/dataprotect/restore/generation-parts.js';
import { runRestore, validate } from '../../server/dataprotect/restore/operations/index.js';
import { Repository } from '../../server/engine/index.js';
import { freePort, startDovecot } from '../../server/host/reference/dovecot.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { referenceInstallation } from '../../server/host/reference/installation.js';
import { CORE_SERVER, MAIL_SERVER, hostLayout } from '../../server/host/reference/layout.js';
import { SCHEMA_VERSION } from '../../server/host/reference/schema.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { withClient } from '../../server/pg/client.js';
import { openStorage } from '../../server/storage/index.js';
import { runCli } from '../engine/cli-helpers.js';
import { everyMailbox, recordFiles, recordTables, wipeInstallation, type FileEntry } from '../global-restore/helpers.js';
import { sandbox, type Sandbox } from '../host/helpers.js';
import { recordingContext, type ImapMessage } from '../restore/fixture.js';
import { startS3, type TestS3 } from '../storage/s3-server.js';

// A two-server installation backed up by its node agents (one per server, on 127.0.0.1 and 127.0.0.2, started by
// `host agents start`) into an encrypted repository on S3: every part made by its own server's agent; the mail
// server's agent killed (kill -9) mid-run makes its parts INVALID and the rest goes on; restarted, the next run is
// OK; an entity and the whole installation restore exactly from that repository.

const PASSWORD = `agents-${randomBytes(8).toString('hex')}`;
const SECRET = randomBytes(32).toString('hex');

let s3: TestS3;
let gate: S3Gate;
let sb: Sandbox;
let host: ReferenceHost;
let work: string;
let location: string;
let repo: Repository;
let secretFile: string;
let agentEnv: NodeJS.ProcessEnv;
let imapBefore: Map<string, Map<string, ImapMessage[]>>;
let files: FileEntry[];
let tables: Record<string, string[]>;
const savedEnv = { ...process.env };

/**
 * The mail agent reaches S3 through this gate. Holding, it keeps back every request the predicate picks, so that the
 * agent can be killed at a point the test chooses: with its snapshot writes held, a part the agent has started
 * reading cannot be committed before the kill.
 */
interface S3Gate {
  endpoint: string;
  hold(which: (req: http.IncomingMessage) => boolean): void;
  release(): void;
  stop(): Promise<void>;
}

async function startGate(target: string): Promise<S3Gate> {
  let holding: ((req: http.IncomingMessage) => boolean) | null = null;
  let held: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const forward = () => {
      if (req.socket.destroyed) return;
      const up = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (holding?.(req)) held.push(forward);
    else forward();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold: (which) => (holding = which),
    release: () => {
      holding = null;
      const h = held;
      held = [];
      for (const f of h) f();
    },
    stop: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

const cli = (args: string[], env: NodeJS.ProcessEnv) => runCli([...args, '--host-root', sb.root, '--json'], { env });

async function startAgent(server: string): Promise<void> {
  // The mail server's agent goes to S3 through the gate, the core's straight.
  const env = server === MAIL_SERVER ? { ...agentEnv, AWS_ENDPOINT_URL_S3: gate.endpoint } : agentEnv;
  const r = await cli(['host', 'agents', 'start', '--server', server], env);
  expect(r.code, r.stderr).toBe(0);
}

async function agents(): Promise<AgentState[]> {
  return runningAgents(hostLayout(sb.root));
}

/**
 * The coordinator's agents, as DP_AGENTS would give them; `onProgress` hears each progress line (the first
 * `bytes` call of a part is the agent's `started` line, the next ones its progress lines).
 */
async function coordinatorAgents(onProgress?: (server: string) => void): Promise<PartAgents> {
  const base = partAgents(parseAgents(agentsValue(await agents())), { DP_AGENT_SECRET_FILE: secretFile })!;
  return (server) => {
    const a = base(server);
    if (!a || !onProgress) return a;
    return {
      endpoint: a.endpoint,
      backup: (req, call) => {
        let lines = 0;
        return a.backup(req, {
          ...call,
          bytes: (n) => {
            if (lines++ > 0) onProgress(server.uid);
            call.bytes(n);
          },
        });
      },
    };
  };
}

async function generation(agentsOf: PartAgents): Promise<GenerationRunResult> {
  return runGeneration({
    repo, host, trigger: 'cli', productVersion: SCHEMA_VERSION, backupEmails: true, backupArchivedEmails: true, skippedTags: [],
    agents: agentsOf, repositoryLocation: location,
  });
}

/** Which agent made each part, from the part's snapshot metadata. */
async function madeBy(r: GenerationRunResult): Promise<Record<string, unknown>> {
  const snaps = await repo.listSnapshots();
  const out: Record<string, unknown> = {};
  for (const p of r.generation.parts) out[`${p.server} ${p.tag}`] = p.snapshot ? snaps.find((s) => s.id === p.snapshot)?.meta?.agent ?? 'in-process' : null;
  return out;
}

beforeAll(async () => {
  s3 = await startS3();
  gate = await startGate(s3.endpoint);
  Object.assign(process.env, s3.env);
  sb = await sandbox('agents');
  await seedReference({ connection: sb.db, root: sb.root, users: 4, messagesPerUser: 6, eventsPerUser: 4, contactsPerUser: 3, todosPerUser: 2 });
  host = new ReferenceHost(sb.root, sb.db);
  await startDovecot(host.layout, { port: await freePort() });
  imapBefore = await everyMailbox(host.layout);

  work = await mkdtemp(path.join(tmpdir(), 'dp-agents-'));
  const passwordFile = path.join(work, 'repository.password');
  await writeFile(passwordFile, PASSWORD + '\n', { mode: 0o600 });
  secretFile = path.join(work, 'agent.key');
  await writeFile(secretFile, SECRET + '\n');
  await chmod(secretFile, 0o600);
  location = s3.location();
  repo = await Repository.init(openStorage(location), { password: PASSWORD, scrypt: { N: 1024, r: 8, p: 1 } });
  const d = sb.db;
  agentEnv = {
    ...s3.env, DATABASE_URL: `postgres://${d.user}@${d.host}:${d.port}/${d.database}`,
    DP_AGENT_SECRET_FILE: secretFile, DP_REPOSITORY_PASSWORD_FILE: passwordFile, DP_REPOSITORY_PASSWORD: '', DP_AGENTS: '',
  };
  await startAgent(CORE_SERVER);
  await startAgent(MAIL_SERVER);
});

afterAll(async () => {
  if (sb) await cli(['host', 'agents', 'stop'], agentEnv ?? {}).catch(() => {});
  await repo?.close().catch(() => {});
  await sb?.cleanup();
  await gate?.stop();
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
  for (const k of Object.keys(s3?.env ?? {})) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

describe('node agents', () => {
  it('`host agents start` runs one agent per server, each on its own address', async () => {
    const a = await agents();
    expect(a.map((x) => [x.server, x.address])).toEqual([[MAIL_SERVER, '127.0.0.2'], [CORE_SERVER, '127.0.0.1']].sort((x, y) => x[0].localeCompare(y[0])));
    for (const x of a) expect(new URL(x.url).hostname).toBe(x.address);
    const status = await cli(['host', 'agents', 'status'], agentEnv);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(agentsValue(a));
  });

  it('refuses every call without the secret or with another one (401), and answers the coordinator', async () => {
    const mail = (await agents()).find((a) => a.server === MAIL_SERVER)!;
    const body = JSON.stringify({ generation: 'x', server: MAIL_SERVER, tag: 'bm/conf', time: new Date().toISOString(), repository: location });
    const before = (await repo.listSnapshots()).length;
    const calls: [string, RequestInit][] = [
      ['/v1/health', {}],
      ['/v1/health', { headers: { authorization: `Bearer ${randomBytes(32).toString('hex')}` } }],
      ['/v1/health', { headers: { authorization: SECRET } }],
      ['/v1/parts/backup', { method: 'POST', body, headers: { 'content-type': 'application/json' } }],
      ['/v1/parts/backup', { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET.slice(1)}` } }],
      ['/v1/nothing', { method: 'POST', body }],
    ];
    for (const [p, init] of calls) {
      const r = await fetch(`${mail.url}${p}`, init);
      expect(r.status, `${init.method ?? 'GET'} ${p}`).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      expect(await r.text()).not.toContain(SECRET);
    }
    expect((await repo.listSnapshots()).length).toBe(before);

    const ok = await fetch(`${mail.url}/v1/health`, { headers: { authorization: `Bearer ${SECRET}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ server: MAIL_SERVER, address: '127.0.0.2', protocol: 1 });
    // Another server's part is not this agent's.
    const other = await fetch(`${mail.url}/v1/parts/backup`, { method: 'POST', body: body.replace(MAIL_SERVER, CORE_SERVER), headers: { authorization: `Bearer ${SECRET}` } });
    expect(other.status).toBe(409);
    // A restore writes only the server's own data locations, as its host describes them.
    const restore = (locations: unknown) => fetch(`${mail.url}/v1/parts/restore`, {
      method: 'POST', headers: { authorization: `Bearer ${SECRET}` },
      body: JSON.stringify({ repository: location, generation: 'x', key: `${MAIL_SERVER} mail/imap`, tag: 'mail/imap', server: MAIL_SERVER, snapshot: 'x', locations, changes: [] }),
    });
    const foreign = await restore([{ virtualPath: '/spool', fsPath: path.join(work, 'elsewhere') }]);
    expect(foreign.status).toBe(409);
    expect(((await foreign.json()) as { error: string }).error).toMatch(/not a data location of mail\/imap on bm-mail/);
    expect((await restore('all')).status).toBe(400);
    const unauthenticated = await fetch(`${mail.url}/v1/parts/restore`, { method: 'POST', body: '{}' });
    expect(unauthenticated.status).toBe(401);

    // A coordinator with another secret gets the part INVALID, saying what to do.
    const wrong = httpPartAgent(mail.url, async () => 'not the installation secret at all');
    const part = await wrong.backup({ generation: 'x', server: MAIL_SERVER, tag: 'bm/conf', time: new Date().toISOString(), repository: location }, { bytes: () => {} });
    expect(part.status).toBe('INVALID');
    expect(part.messages[0]).toMatch(/refused the coordinator's secret.*DP_AGENT_SECRET_FILE/);
    expect((await repo.listSnapshots()).length).toBe(before);
  });

  let lastGood: string;

  it('a generation into the encrypted S3 repository: every part VALID, made by the agent of its own server', async () => {
    const r = await generation(await coordinatorAgents());
    expect(r.generation.parts.map((p) => [p.server, p.tag, p.status, p.messages])).toEqual(r.generation.parts.map((p) => [p.server, p.tag, 'VALID', []]));
    expect(r.runStatus).toBe('OK');
    expect(r.generation.parts.map((p) => p.tag).sort()).toEqual(['bm/conf', 'bm/conf', 'bm/pgsql', 'filehosting/data', 'mail/archive', 'mail/imap']);
    const by = await madeBy(r);
    for (const p of r.generation.parts) expect(by[`${p.server} ${p.tag}`], `${p.server} ${p.tag}`).toBe(p.server === MAIL_SERVER ? '127.0.0.2' : '127.0.0.1');
    files = await recordFiles(host.layout);
    tables = await recordTables(sb.db);
    // The agents' logs name the parts, never the secret nor the repository password.
    for (const n of await readdir(path.join(sb.root, 'agents'))) {
      if (!n.endsWith('.log')) continue;
      const log = await readFile(path.join(sb.root, 'agents', n), 'utf8');
      expect(log).toContain('part bm-');
      expect(log).not.toContain(SECRET);
      expect(log).not.toContain(PASSWORD);
    }
    lastGood = r.generation.id;
  });

  it("the mail server's agent killed mid-run: its parts INVALID with the reason, the core's VALID, run ERROR; restarted, the next run is OK", async () => {
    const mail = (await agents()).find((a) => a.server === MAIL_SERVER)!;
    let killed = false;
    // The mail agent opens the repository, takes its lock and reads; its snapshot writes wait at the gate.
    gate.hold((req) => req.method === 'PUT' && /\/snapshots\//.test(req.url ?? ''));
    const agentsOf = await coordinatorAgents((server) => {
      if (server !== MAIL_SERVER || killed) return;
      // Its first progress line: it is reading its first part, holding the repository's lock.
      process.kill(mail.pid, 'SIGKILL');
      killed = true;
    });
    const r = await generation(agentsOf);
    gate.release();
    expect(killed).toBe(true);
    const mailParts = r.generation.parts.filter((p) => p.server === MAIL_SERVER);
    const coreParts = r.generation.parts.filter((p) => p.server === CORE_SERVER);
    expect(mailParts.map((p) => p.tag)).toEqual(['bm/conf', 'mail/imap', 'mail/archive']);
    expect(mailParts.map((p) => p.status)).toEqual(['INVALID', 'INVALID', 'INVALID']);
    expect(mailParts[0].messages[0]).toMatch(/agent at http:\/\/127\.0\.0\.2:\d+ stopped answering while backing up the part/);
    // Refused once the process is gone; reset when the call reached it while the kernel was tearing it down.
    for (const p of mailParts.slice(1)) expect(p.messages[0]).toMatch(/agent of bm-mail at http:\/\/127\.0\.0\.2:\d+ is unreachable \((ECONNREFUSED|ECONNRESET)\)/);
    expect(coreParts.map((p) => [p.tag, p.status])).toEqual([['bm/pgsql', 'VALID'], ['bm/conf', 'VALID'], ['filehosting/data', 'VALID']]);
    expect(r.generation.status).toBe('INVALID');
    expect(r.runStatus).toBe('ERROR');
    // `latest` still names the last VALID generation.
    expect(JSON.parse((await repo.readReference('latest'))!.toString()).generation).toBe(lastGood);

    await startAgent(MAIL_SERVER);
    const again = await generation(await coordinatorAgents());
    expect(again.runStatus).toBe('OK');
    expect(again.generation.parts.every((p) => p.status === 'VALID')).toBe(true);
    const by = await madeBy(again);
    expect(Object.entries(by).filter(([k]) => k.startsWith(MAIL_SERVER)).map(([, v]) => v)).toEqual(['127.0.0.2', '127.0.0.2', '127.0.0.2']);
    lastGood = again.generation.id;
  });

  it("the plugin's runner with DP_AGENTS: Backup now asks each server's agent for its parts", async () => {
    const databaseUrl = `${PG_BASE}/dp_test_agents_${randomBytes(5).toString('hex')}`;
    const env = { DP_AGENTS: agentsValue(await agents()), DP_AGENT_SECRET_FILE: secretFile, DP_REPOSITORY_PASSWORD_FILE: agentEnv.DP_REPOSITORY_PASSWORD_FILE };
    const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    const app = Fastify();
    let reg: Awaited<ReturnType<typeof registerServer>> | undefined;
    try {
      reg = await registerServer(
        { fastify: app, databaseUrl, auth: testAuth, defaultRepositoryLocation: location, taskFilesDir: path.join(work, 'files'), nodeId: 'node-agents', log: { info: () => {}, error: () => {} } },
        { installation: { port: host, productVersion: SCHEMA_VERSION, mailer: null } },
      );
      await app.ready();
      const started = await app.inject({ method: 'POST', url: '/api/dataprotect/backups', headers: { 'x-bm-apikey': KEYS.admin } });
      expect(started.statusCode, started.body).toBe(202);
      const task = started.json().task.id as string;
      const done = await reg.container.resolve(TaskRegistry).whenDone(task);
      expect(done?.status, done?.error ?? '').toBe('SUCCEEDED');
      const id = done!.result!.generationId as string;
      const snaps = (await repo.listSnapshots()).filter((x) => x.meta?.generation === id && x.server !== '_dataprotect');
      expect(snaps.map((x) => [x.server, x.tag, x.meta?.agent]).sort()).toEqual([
        [CORE_SERVER, 'bm/conf', '127.0.0.1'], [CORE_SERVER, 'bm/pgsql', '127.0.0.1'], [CORE_SERVER, 'filehosting/data', '127.0.0.1'],
        [MAIL_SERVER, 'bm/conf', '127.0.0.2'], [MAIL_SERVER, 'mail/imap', '127.0.0.2'],
      ].sort());
      const log = JSON.stringify((await app.inject({ method: 'GET', url: `/api/dataprotect/tasks/${task}/log`, headers: { 'x-bm-apikey': KEYS.admin } })).json());
      expect(log).toContain('backed up by the agent at http://127.0.0.2:');
      expect(log).not.toContain(SECRET);
      expect(log).not.toContain(PASSWORD);
    } finally {
      await app.close();
      await reg?.close();
      await dropDatabase(databaseUrl).catch(() => {});
      for (const [k, v] of Object.entries(before)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('`generation backup` on the command line uses the running reference agents', async () => {
    const r = await runCli(['generation', 'backup', '--repo', location, '--host-root', sb.root, '--no-retention', '--no-post-script', '--json'], { env: agentEnv });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { generation?: { id: string }; id?: string };
    const id = summary.generation?.id ?? summary.id;
    expect(id).toBeTruthy();
    const snaps = (await repo.listSnapshots()).filter((x) => x.meta?.generation === id && x.server !== '_dataprotect');
    expect(snaps.length).toBe(5);
    for (const x of snaps) expect(x.meta?.agent, `${x.server} ${x.tag}`).toBe(x.server === MAIL_SERVER ? '127.0.0.2' : '127.0.0.1');
    expect(r.stdout).toContain('backed up by the agent at http://127.0.0.2:');
  });

  it("a global restore from that repository, each server's file parts through its agent, brings back every table row, file and message", async () => {
    await wipeInstallation(host);
    const r = await runGlobalRestore({ repo, installation: referenceInstallation(host), generation: lastGood, agents: await coordinatorAgents(), repositoryLocation: location });
    expect(r.parts.every((p) => p.state === 'restored')).toBe(true);
    const urls = Object.fromEntries((await agents()).map((a) => [a.server, a.url]));
    for (const p of r.parts) {
      if (p.tag === 'bm/pgsql') expect(p.detail).not.toContain('by the agent');
      else expect(p.detail, p.key).toContain(`by the agent at ${urls[p.target]}`);
    }
    expect(r.parts.find((p) => p.tag === 'mail/imap')!.detail).toMatch(/mail server resynchronised \d+ mailboxes/);
    expect(await recordTables(sb.db)).toEqual(tables);
    expect(await recordFiles(host.layout)).toEqual(files);
    const imap = await everyMailbox(host.layout);
    expect([...imap.keys()]).toEqual([...imapBefore.keys()]);
    for (const [login, folders] of imapBefore) expect(imap.get(login), login).toEqual(folders);
  });

  it("a single-entity restore (a user's calendars) from that repository puts back exactly what was saved", async () => {
    const sql = <T = Record<string, unknown>>(text: string, params: unknown[] = []) => withClient(sb.db, async (c) => (await c.query(text, params)).rows as T[]);
    const [u] = await sql<{ uid: string }>(`SELECT entry_uid AS uid FROM t_directory_entry WHERE kind = 'USER' ORDER BY entry_uid LIMIT 1`);
    const calendar = `calendar:Default:${u.uid}`;
    const items = () => sql(
      `SELECT i.uid, i.version, i.displayname, i.created, i.updated, (SELECT json_agg(to_jsonb(r) - 'item_id' ORDER BY r.recurid_timestamp NULLS FIRST, r.dtstart_timestamp) FROM t_calendar_vevent r WHERE r.item_id = i.id)::text AS events
         FROM t_container_item i WHERE i.container_id = (SELECT id FROM t_container WHERE uid = $1) ORDER BY i.uid`, [calendar]);
    const before = await items();
    expect(before.length).toBeGreaterThan(2);
    await sql(`DELETE FROM t_container_item WHERE id IN (SELECT id FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1) ORDER BY uid LIMIT 2)`, [calendar]);
    expect((await items()).length).toBe(before.length - 2);

    const generations = new RepositoryGenerationParts(async () => repo);
    forgetCatalogs();
    const catalog = await loadCatalog(repo, host, await generations.get(lastGood));
    const entry = catalog.byUid.get(u.uid)!;
    expect(entry).toBeTruthy();
    const env = { repo, host, mailer: null };
    const p = { operation: 'replace.calendars' as const, entry, catalog, actor: { login: 'admin0@global.virt', email: 'admin0@global.virt' } };
    await validate(env, p);
    await runRestore(env, p, recordingContext().ctx);
    expect(await items()).toEqual(before);
  });
});
