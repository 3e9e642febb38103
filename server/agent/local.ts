// The backup process: the parts the coordinator backs up itself (its own servers) run in a child process of its
// own, at low CPU and I/O priority, so that the API, which shares the coordinator's event loop, and the services
// of the machine keep answering during a run. The child is a node agent serving every server of the installation
// on loopback free ports with a secret of the moment; the coordinator asks it for parts over the agent protocol,
// so progress, notices, cancellation and a death mid-part (the part INVALID with the reason) are as with the
// agents of other servers. It starts on the first part and stops a while after the last one: between runs it
// holds no memory.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setPriority } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { Repository } from '../engine/index.js';
import { failedPart } from '../dataprotect/generation/part-backup.js';
import type { PartAgent, PartAgents } from '../dataprotect/generation/part-agents.js';
import { openLocation } from '../dataprotect/generation/repository.js';
import type { TreeHost } from '../dataprotect/global-restore/tree-part.js';
import type { HostPort } from '../host/port.js';
import { httpPartAgent } from './client.js';
import { lowerAutogroup, workerProcessEnv } from '../engine/process-settings.js';
import { prioritized, processPriority, schedulingClass, type ProcessPriority } from './priority.js';
import { startAgent } from './server.js';

/** How to start the backup process for an installation: a command that ends in `serveBackupProcess`. */
export interface BackupProcessCommand {
  command: string;
  args: string[];
  /** Added to this process's environment (the installation's own settings, e.g. its database). */
  env?: Record<string, string>;
}

export interface BackupProcessOptions {
  /** Default: DP_BACKUP_NICE and DP_BACKUP_IO. */
  priority?: ProcessPriority;
  /** The process's own messages (its start, its end, what it writes on its standard error). */
  log?: (line: string) => void;
  /** How long the process stays after its last call (default 60 s). */
  idleStopMs?: number;
  /** How long it may take to start (default 60 s). */
  startTimeoutMs?: number;
}

export interface BackupProcess {
  /** The process's agent for a server (every server of the installation): started on first use, again after a death. */
  agents: PartAgents;
  /** The running process's id, or null when none runs. */
  pid(): number | null;
  /** Stops the process (a call in progress fails with the reason). */
  close(): Promise<void>;
}

/** The first line the process writes on its standard output: where each server's agent answers. */
interface Announcement {
  agents: Record<string, string>;
}

interface Running {
  child: ChildProcessWithoutNullStreams;
  pid: number;
  secret: string;
  agents: Map<string, PartAgent>;
  /** Set once the process has ended: how (`killed by SIGKILL`, `exit code 1`). */
  ended: string | null;
  exited: Promise<string>;
}

const DEFAULT_IDLE_STOP_MS = 60_000;
const DEFAULT_START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;

export function backupProcess(cmd: BackupProcessCommand, o: BackupProcessOptions = {}): BackupProcess {
  const priority = o.priority ?? processPriority();
  const log = o.log ?? (() => {});
  const idleStopMs = o.idleStopMs ?? DEFAULT_IDLE_STOP_MS;
  let running: Running | null = null;
  let starting: Promise<Running> | null = null;
  let active = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const start = async (): Promise<Running> => {
    const secret = randomBytes(32).toString('hex');
    const p = prioritized(cmd.command, cmd.args, priority);
    // A session of its own: where the kernel groups processes by session, its nice value then weighs against the
    // machine's services, not only against this server (see lowerAutogroup). Its input still ends with this process.
    const child = spawn(p.command, p.args, { env: workerProcessEnv({ ...process.env, ...cmd.env }), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const pid = child.pid;
    if (pid === undefined) {
      const err = await new Promise<Error>((resolve) => child.once('error', resolve));
      throw new Error(`cannot start ${cmd.command}: ${err.message}`);
    }
    if (!p.niced) {
      try {
        setPriority(pid, priority.nice); // its main thread at least
      } catch {
        // not allowed here: it runs at the server's priority
      }
    }
    const group = lowerAutogroup(pid, priority.nice);
    const r: Running = { child, pid, secret, agents: new Map(), ended: null, exited: null as never };
    r.exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => {
        r.ended = signal ? `killed by ${signal}` : `exit code ${code}`;
        if (running === r) running = null;
        log(`backup process ${pid} ended (${r.ended})`);
        resolve(r.ended);
      });
    });
    child.once('error', (err) => log(`backup process ${pid}: ${err.message}`));
    child.stdin.on('error', () => {}); // it died: its exit says how
    // Its stdin stays open: its end (this process gone, or close()) tells it to stop.
    child.stdin.write(`${secret}\n`);
    let tail = '';
    lines(child.stderr, (l) => {
      tail = `${tail}\n${l}`.slice(-600);
      log(`backup process ${pid}: ${l}`);
    });
    const announced = await new Promise<Announcement>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`it did not answer within ${Math.round((o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS) / 1000)} s`)), o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
      let first = true;
      lines(child.stdout, (l) => {
        if (!first) return;
        first = false;
        clearTimeout(timer);
        try {
          const a = JSON.parse(l) as Announcement;
          if (!a.agents || typeof a.agents !== 'object') throw new Error('no agents');
          resolve(a);
        } catch {
          reject(new Error(`it said ${JSON.stringify(l.slice(0, 200))} instead of where it answers`));
        }
      });
      void r.exited.then((how) => (clearTimeout(timer), reject(new Error(`it ended at once (${how})${tail.trim() ? `: ${tail.trim()}` : ''}`))));
    }).catch(async (err: Error) => {
      child.kill('SIGKILL');
      await r.exited;
      throw err;
    });
    for (const [server, url] of Object.entries(announced.agents)) r.agents.set(server, httpPartAgent(url, async () => secret));
    const cls = p.cpu === 'idle' ? await schedulingClass(pid) : null;
    const cpu = cls === null || cls === 'idle' ? p.cpu : `${cls} (idle refused)`;
    log(`backup process ${pid} started (nice ${priority.nice}, ${await group}, CPU class ${cpu}, I/O ${p.io})`);
    return r;
  };

  const ensure = (): Promise<Running> => {
    if (closed) return Promise.reject(new Error('the server is stopping'));
    if (running && !running.ended) return Promise.resolve(running);
    starting ??= start().then(
      (r) => ((running = r), (starting = null), r),
      (err: Error) => {
        starting = null;
        throw err;
      },
    );
    return starting;
  };

  const stop = async () => {
    const r = running;
    running = null;
    if (!r || r.ended) return;
    r.child.stdin.end();
    const timer = setTimeout(() => r.child.kill('SIGKILL'), STOP_GRACE_MS);
    await r.exited;
    clearTimeout(timer);
  };

  /** Runs a call on the process; after the last one, the process stops once idle for a while. */
  const using = async <T>(work: () => Promise<T>): Promise<T> => {
    active++;
    clearTimeout(idleTimer);
    try {
      return await work();
    } finally {
      if (--active === 0 && !closed) {
        idleTimer = setTimeout(() => void stop(), idleStopMs);
        idleTimer.unref();
      }
    }
  };

  /** How the process ended during a call, waiting a moment for its exit to be seen (the connection drops first). */
  const endedDuring = async (r: Running): Promise<string | null> =>
    r.ended ?? (await Promise.race([r.exited, new Promise<null>((res) => setTimeout(() => res(null), 1000).unref())]));

  const agentOf = (server: string): PartAgent => {
    /** A restore's disk work on the process; its death fails the restore saying so. */
    const restoring = <T>(work: (agent: PartAgent) => Promise<T> | undefined): Promise<T> =>
      using(async () => {
        const r = await ensure().catch((err: Error) => {
          throw new Error(`the backup process did not start: ${err.message}`);
        });
        const agent = r.agents.get(server);
        const call = agent && work(agent);
        if (!call) throw new Error(`the backup process serves no server ${server}`);
        try {
          return await call;
        } catch (err) {
          const how = await endedDuring(r);
          if (!how) throw err;
          throw new Error(`the backup process (pid ${r.pid}) ended during the restore (${how}); run the restore again`);
        }
      });

    return {
      endpoint: 'the backup process',
      local: true,
      backup: (req, call) =>
        using(async () => {
          const begin = new Date();
          let r: Running;
          try {
            r = await ensure();
          } catch (err) {
            return failedPart(req, begin, `the backup process did not start: ${(err as Error).message}`);
          }
          const agent = r.agents.get(server);
          if (!agent) return failedPart(req, begin, `the backup process serves no server ${server}`);
          const part = await agent.backup(req, call);
          if (part.status !== 'INVALID' || call.signal?.aborted) return part;
          const how = await endedDuring(r);
          if (!how) return part;
          return { ...part, messages: [`the backup process (pid ${r.pid}) ended while backing up the part (${how}); nothing of it is in this generation`] };
        }),
      restoreTree: (req, call) => restoring((a) => a.restoreTree?.(req, call)),
      restoreEntity: (req, call) => restoring((a) => a.restoreEntity?.(req, call)),
    };
  };
  const agents = new Map<string, PartAgent>();

  return {
    agents: (s) => {
      let a = agents.get(s.uid);
      if (!a) agents.set(s.uid, (a = agentOf(s.uid)));
      return a;
    },
    pid: () => (running && !running.ended ? running.pid : null),
    async close() {
      closed = true;
      clearTimeout(idleTimer);
      await starting?.catch(() => {});
      await stop();
    },
  };
}

export interface ServeOptions {
  host: HostPort;
  /** What a restored file part tells the installation; without it the process does not restore. */
  installation?: TreeHost;
  input?: Readable;
  output?: Writable;
  log?: (line: string) => void;
}

/**
 * The child's side: reads the secret (the first line of its input), starts an agent for every server of the
 * installation on a loopback free port, says where on its output (one JSON line), and serves until its input
 * ends (the server stopped it, or died).
 */
export async function serveBackupProcess(o: ServeOptions): Promise<void> {
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  let ended!: () => void;
  const end = new Promise<void>((resolve) => (ended = resolve));
  input.once('end', () => ended());
  input.once('close', () => ended());
  const secret = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      input.off('data', onData);
      resolve(text.slice(0, nl));
    };
    input.on('data', onData);
    void end.then(() => reject(new Error('the input ended before the secret was given')));
  });
  input.resume(); // drained, so that its end is seen
  if (secret.length < 16) throw new Error('the secret on the input is shorter than 16 characters');
  const servers = await o.host.servers();
  const repositories = generationRepositories();
  const running = await Promise.all(
    servers.map((server) =>
      startAgent({
        server, host: o.host, installation: o.installation, secret, listen: { address: '127.0.0.1', port: 0 }, log: o.log, openRepository: repositories.open,
      }),
    ),
  );
  output.write(JSON.stringify({ agents: Object.fromEntries(servers.map((s, i) => [s.uid, running[i].url])) } satisfies Announcement) + '\n');
  await end;
  // A part waiting on storage that never answers must not keep the process: the close is bounded.
  await Promise.race([Promise.all(running.map((a) => a.close())).then(() => repositories.close()), new Promise((r) => setTimeout(r, STOP_GRACE_MS).unref())]);
}

/**
 * The parts of one generation share one opened repository (its index read once), as they do in the coordinator's
 * process; another generation, or a restore, opens it anew: a prune may have run since. The shared one is closed
 * when a part of another generation comes, or a while after its last part.
 */
export function generationRepositories(idleMs = 30_000) {
  let shared: { key: string; repo: Promise<Repository | null>; users: number; timer?: NodeJS.Timeout } | null = null;
  const release = (s: NonNullable<typeof shared>) => {
    if (--s.users > 0) return;
    s.timer = setTimeout(() => {
      if (shared === s) shared = null;
      void s.repo.then((r) => r?.close()).catch(() => {});
    }, idleMs);
    s.timer.unref();
  };
  return {
    async open(location: string, signal: AbortSignal, generation?: string): Promise<Repository | null> {
      if (!generation) return openLocation(location, { signal });
      const key = `${generation} ${location}`;
      if (shared?.key !== key) {
        const old = shared;
        if (old && old.users === 0) {
          clearTimeout(old.timer);
          void old.repo.then((r) => r?.close()).catch(() => {});
        }
        shared = { key, repo: openLocation(location, {}), users: 0 };
      }
      const s = shared;
      s.users++;
      clearTimeout(s.timer);
      let repo: Repository | null;
      try {
        // Shared, its opening is not cancelled with one part; the part stops waiting for it when cancelled.
        repo = await Promise.race([s.repo, new Promise<never>((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        })]);
      } catch (err) {
        if (shared === s) shared = null;
        release(s);
        throw err;
      }
      if (!repo) {
        release(s);
        return null;
      }
      let closed = false;
      // The part's own close gives the shared repository back instead of closing it.
      return new Proxy(repo, {
        get(target, key) {
          if (key === 'close') {
            return async () => {
              if (!closed) (closed = true), release(s);
            };
          }
          const v = Reflect.get(target, key, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
    async close() {
      const s = shared;
      shared = null;
      if (s) await s.repo.then((r) => r?.close()).catch(() => {});
    },
  };
}

function lines(stream: Readable, each: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    rest += d;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (line) each(line);
    }
  });
}
