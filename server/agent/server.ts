// The node agent: an HTTP server on the server's own address that backs up that server's parts into the shared
// repository when the coordinator asks, streaming progress back as JSON lines. Every call carries the
// installation's secret; a call without it, or with another, is refused (401) before anything is read.

import path from 'node:path';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Repository } from '../engine/index.js';
import { backupPart, failedPart } from '../dataprotect/generation/part-backup.js';
import { openLocation } from '../dataprotect/generation/repository.js';
import { clearLocations, restoreTreePart, type TreeHost } from '../dataprotect/global-restore/tree-part.js';
import type { EntityRestoreRequest, TreeRestoreRequest } from '../dataprotect/generation/part-agents.js';
import { AGENT_OPERATIONS, plannedOnAgent, runRestoreHere, type RestoreContext } from '../dataprotect/restore/operations/index.js';
import type { HostPort, HostServer, MailboxLocation } from '../host/port.js';
import { authorized } from './secret.js';
import {
  BACKUP_PATH, ENTITY_RESTORE_PATH, HEALTH_PATH, PROTOCOL_VERSION, RESTORE_PATH, parseEntityRestoreRequest, parsePartRequest, parseRestoreRequest,
  type AgentIdentity, type BackupLine, type EntityRestoreLine, type RestoreLine,
} from './protocol.js';

export interface AgentOptions {
  /** The server this agent serves (its parts only). */
  server: HostServer;
  host: HostPort;
  /** What a restored file part tells the server (the mail server re-reads its spool); without it, no restores. */
  installation?: TreeHost;
  secret: string;
  /** Where to listen: the server's own address; port 0 takes a free one. */
  listen: { address: string; port: number };
  log?: (line: string) => void;
  /**
   * How a repository location opens here (default: openLocation, with this process's password and S3 settings);
   * `generation` is given for a part of that generation. The repository is closed after each call.
   */
  openRepository?: (location: string, signal: AbortSignal, generation?: string) => Promise<Repository | null>;
}

export interface RunningAgent {
  url: string;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;
/** A single-entity restore may name thousands of chosen messages. */
const MAX_ENTITY_BODY = 4 * 1024 * 1024;
/** Progress lines at most this often: the coordinator shows them, it does not need every archiver update. */
const PROGRESS_EVERY_MS = 250;
/** A progress line at least this often, however slow the part: the coordinator takes a long silence for a dead agent. */
const HEARTBEAT_MS = 10_000;

export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  const log = o.log ?? (() => {});
  const identity: AgentIdentity = { server: o.server.uid, address: o.server.address, protocol: PROTOCOL_VERSION };
  const open = o.openRepository ?? ((location, signal) => openLocation(location, { signal }));

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (!authorized(req.headers.authorization, o.secret)) {
      // Nothing about the request is logged beyond its origin: a wrong secret is never echoed.
      log(`refused ${req.method} ${req.url?.split('?')[0]} from ${req.socket.remoteAddress}: no valid secret`);
      req.resume();
      return answer(res, 401, { error: 'this agent answers only its coordinator: give the installation\'s agent secret (DP_AGENT_SECRET_FILE)' }, { 'www-authenticate': 'Bearer' });
    }
    const url = req.url?.split('?')[0];
    if (req.method === 'GET' && url === HEALTH_PATH) return answer(res, 200, identity);
    if (req.method !== 'POST' || (url !== BACKUP_PATH && url !== RESTORE_PATH && url !== ENTITY_RESTORE_PATH)) {
      req.resume();
      return answer(res, 404, { error: `no ${req.method} ${url} here (the agent serves POST ${BACKUP_PATH}, POST ${RESTORE_PATH}, POST ${ENTITY_RESTORE_PATH} and GET ${HEALTH_PATH})` });
    }
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req, url === ENTITY_RESTORE_PATH ? MAX_ENTITY_BODY : MAX_BODY)).toString('utf8'));
    } catch (err) {
      return answer(res, 400, { error: `the body is not JSON of at most ${url === ENTITY_RESTORE_PATH ? MAX_ENTITY_BODY : MAX_BODY} bytes: ${(err as Error).message}` });
    }
    if (url === RESTORE_PATH) {
      const r = parseRestoreRequest(body);
      if (typeof r === 'string') return answer(res, 400, { error: r });
      if (r.server !== o.server.uid) return answer(res, 409, { error: `this agent serves ${o.server.uid} (${o.server.address}), not ${r.server}` });
      if (!o.installation) return answer(res, 501, { error: 'this agent does not restore' });
      // Only the server's own data locations, exactly as its host describes them, are written.
      const own = await o.host.dataLocations(o.server.uid, r.tag);
      const foreign = r.locations.filter((l) => !own.some((x) => x.virtualPath === l.virtualPath && x.fsPath === l.fsPath));
      if (foreign.length || !r.locations.length) {
        return answer(res, 409, { error: `${foreign.map((l) => l.fsPath).join(', ') || 'no location'}: not a data location of ${r.tag} on ${o.server.uid}` });
      }
      return restoreTree(r, res);
    }
    if (url === ENTITY_RESTORE_PATH) {
      const r = parseEntityRestoreRequest(body);
      if (typeof r === 'string') return answer(res, 400, { error: r });
      if (r.server !== o.server.uid) return answer(res, 409, { error: `this agent serves ${o.server.uid} (${o.server.address}), not ${r.server}` });
      if (!AGENT_OPERATIONS.has(r.operation as never)) return answer(res, 400, { error: `${r.operation} is not a restore an agent runs (it runs ${[...AGENT_OPERATIONS].join(', ')})` });
      const foreign = await foreignMailbox(r);
      if (foreign) return answer(res, 409, { error: foreign });
      return restoreEntity(r, res);
    }
    const p = parsePartRequest(body);
    if (typeof p === 'string') return answer(res, 400, { error: p });
    if (p.server !== o.server.uid) {
      return answer(res, 409, { error: `this agent serves ${o.server.uid} (${o.server.address}), not ${p.server}: check the coordinator's agent addresses (DP_AGENTS)` });
    }
    await backup(p, req, res);
  };

  const backup = async (p: NonNullable<ReturnType<typeof parsePartRequest>> & object, req: IncomingMessage, res: ServerResponse) => {
    const key = `${p.server} ${p.tag}`;
    const cancel = new AbortController();
    // The coordinator went away (cancelled, or died): stop reading, commit nothing.
    res.on('close', () => {
      if (!res.writableFinished) cancel.abort(new Error('the coordinator closed the connection'));
    });
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const send = (line: BackupLine) => {
      if (!res.destroyed) res.write(JSON.stringify(line) + '\n');
    };
    send({ type: 'started', agent: identity });
    let lastBytes = 0;
    const heartbeat = setInterval(() => send({ type: 'progress', bytes: lastBytes }), HEARTBEAT_MS);
    log(`part ${key} of generation ${p.generation}: starting`);
    const begin = new Date();
    let part;
    let repo: Repository | null = null;
    try {
      repo = await open(p.repository, cancel.signal, p.generation);
      if (!repo) part = failedPart(p, begin, `the agent on ${o.server.address} sees no repository at ${p.repository}: it must reach the same folder or bucket as the coordinator`);
    } catch (err) {
      part = failedPart(p, begin, `the agent on ${o.server.address} cannot open the repository ${p.repository}: ${(err as Error).message}`);
    }
    if (repo) {
      let last = 0;
      let pending: number | null = null;
      try {
        part = await backupPart({
          repo, host: o.host, part: p, generation: p.generation, time: new Date(p.time), signal: cancel.signal,
          meta: { agent: o.server.address },
          bytes: (n) => {
            pending = n;
            lastBytes = n;
            if (Date.now() - last >= PROGRESS_EVERY_MS) {
              last = Date.now();
              send({ type: 'progress', bytes: n });
              pending = null;
            }
          },
          log: { info: (m) => send({ type: 'log', level: 'info', message: m }) },
        });
        if (pending !== null) send({ type: 'progress', bytes: pending });
      } finally {
        await repo.close().catch(() => {});
      }
    }
    clearInterval(heartbeat);
    log(`part ${key} of generation ${p.generation}: ${part!.status}${part!.messages.length ? ` (${part!.messages[0]})` : ''}`);
    send({ type: 'result', part: part! });
    res.end();
    void req;
  };

  const restoreTree = async (r: TreeRestoreRequest, res: ServerResponse) => {
    const cancel = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) cancel.abort(new Error('the coordinator closed the connection'));
    });
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const send = (line: RestoreLine) => {
      if (!res.destroyed) res.write(JSON.stringify(line) + '\n');
    };
    send({ type: 'started', agent: identity });
    log(`restore of part ${r.key} (generation ${r.generation}): starting`);
    let repo: Repository | null = null;
    let last = 0;
    let latest = { bytes: 0, bytesTotal: 0, files: 0, filesTotal: 0 };
    const heartbeat = setInterval(() => send({ type: 'progress', ...latest }), HEARTBEAT_MS);
    try {
      repo = await open(r.repository, cancel.signal);
      if (!repo) throw new Error(`the agent on ${o.server.address} sees no repository at ${r.repository}`);
      const snapshot = await repo.findSnapshot(r.snapshot);
      if (snapshot.tag !== r.tag) throw new Error(`snapshot ${r.snapshot.slice(0, 12)} is a ${snapshot.tag} part, not ${r.tag}`);
      await clearLocations(r.locations);
      const done = await restoreTreePart(repo, o.installation!, { key: r.key, tag: r.tag, target: r.server, snapshot, locations: r.locations }, r.changes,
        (bytes, bytesTotal, files, filesTotal) => {
          latest = { bytes, bytesTotal, files, filesTotal };
          if (Date.now() - last < PROGRESS_EVERY_MS) return;
          last = Date.now();
          send({ type: 'progress', bytes, bytesTotal, files, filesTotal });
        },
        { info: (m) => send({ type: 'log', level: 'info', message: m }) });
      log(`restore of part ${r.key}: done (${done.detail})`);
      send({ type: 'restored', done });
    } catch (err) {
      log(`restore of part ${r.key}: failed: ${(err as Error).message}`);
      send({ type: 'failed', message: (err as Error).message });
    } finally {
      clearInterval(heartbeat);
      await repo?.close().catch(() => {});
    }
    res.end();
  };

  /** Why a request's mailbox is not this server's to write (its spool and archive, as this host describes them), or null. */
  const foreignMailbox = async (r: EntityRestoreRequest): Promise<string | null> => {
    if (r.operation === 'restore.filehosting') return null; // the agent finds the file-hosting location itself
    const m: MailboxLocation | undefined = r.mailbox;
    if (!m) return `${r.operation} needs the entity's mailbox location`;
    if (m.server !== o.server.uid) return `the mailbox ${m.imapLogin} is on ${m.server}, not on ${o.server.uid}`;
    const inside = async (tag: string, fsPath: string, partPath: string) => {
      if (partPath.split('/').includes('..')) return false;
      for (const l of await o.host.dataLocations(o.server.uid, tag)) {
        if (!partPath.startsWith(`${l.virtualPath}/`)) continue;
        if (path.resolve(fsPath) === path.join(l.fsPath, partPath.slice(l.virtualPath.length))) return true;
      }
      return false;
    };
    if (!(await inside('mail/imap', m.maildir, m.partPath))) return `${m.maildir}: not a mailbox in a data location of mail/imap on ${o.server.uid}`;
    if (m.archive && !(await inside('mail/archive', m.archive.dir, m.archive.partPath))) return `${m.archive.dir}: not in a data location of mail/archive on ${o.server.uid}`;
    return null;
  };

  const restoreEntity = async (r: EntityRestoreRequest, res: ServerResponse) => {
    const cancel = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) cancel.abort(new Error('the coordinator closed the connection'));
    });
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const send = (line: EntityRestoreLine) => {
      if (!res.destroyed) res.write(JSON.stringify(line) + '\n');
    };
    send({ type: 'started', agent: identity });
    const what = `${r.operation} of ${r.entry.kind} ${r.entry.displayName} (${r.entry.uid})`;
    log(`restore ${what} from generation ${r.generation}: starting`);
    let last = 0;
    let latest: Extract<EntityRestoreLine, { type: 'progress' }> = { type: 'progress' };
    const heartbeat = setInterval(() => send(latest), HEARTBEAT_MS);
    let repo: Repository | null = null;
    try {
      repo = await open(r.repository, cancel.signal);
      if (!repo) throw new Error(`the agent on ${o.server.address} sees no repository at ${r.repository}`);
      const { env, plan } = await plannedOnAgent({ repo, host: o.host, mailer: null }, r);
      const ctx: RestoreContext = {
        signal: cancel.signal,
        progress: (x) => {
          latest = { type: 'progress', ...x };
          if (Date.now() - last < PROGRESS_EVERY_MS) return;
          last = Date.now();
          send(latest);
        },
        info: (message, phrase) => send({ type: 'log', level: 'info', message, ...(phrase ? { phrase } : {}) }),
        warn: (message, phrase) => send({ type: 'log', level: 'warn', message, ...(phrase ? { phrase } : {}) }),
        attach: async () => {
          throw new Error('an agent attaches no file to the task');
        },
      };
      const result = await runRestoreHere(env, plan, ctx);
      send(latest);
      log(`restore ${what}: done`);
      send({ type: 'result', result: { ...result, agent: o.server.address } });
    } catch (err) {
      log(`restore ${what}: failed: ${(err as Error).message}`);
      send({ type: 'failed', message: (err as Error).message });
    } finally {
      clearInterval(heartbeat);
      await repo?.close().catch(() => {});
    }
    res.end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      log(`request failed: ${(err as Error).message}`);
      if (!res.headersSent) answer(res, 500, { error: 'the agent failed; see its log' });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.listen.port, o.listen.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${o.listen.address.includes(':') ? `[${o.listen.address}]` : o.listen.address}:${port}`;
  log(`agent for ${o.server.uid} listening on ${url}`);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new Error('too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
