// The reference host's node agents: one `bm-dataprotect agent` per server of its topology, each on that server's
// loopback address (127.0.0.1, 127.0.0.2) on a free port, detached, with a state file and a log under
// <host-root>/agents. The secret they share with the coordinator is <host-root>/secrets/agent.key (0600) unless the
// environment names one.

import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_SECRET_ENV, AGENT_SECRET_FILE_ENV } from '../agent/secret.js';
import { processAlive } from '../engine/index.js';
import { TOPOLOGY, type HostLayout } from '../host/reference/layout.js';

export interface AgentState {
  server: string;
  address: string;
  url: string;
  pid: number;
}

const START_TIMEOUT_MS = 60_000;

export function agentsDir(layout: HostLayout): string {
  return path.join(layout.root, 'agents');
}

export function referenceAgentSecretFile(layout: HostLayout): string {
  return path.join(layout.secrets, 'agent.key');
}


async function readState(file: string): Promise<AgentState | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as AgentState;
  } catch {
    return null;
  }
}

/** The agents whose process still runs. */
export async function runningAgents(layout: HostLayout): Promise<AgentState[]> {
  const names = await readdir(agentsDir(layout)).catch(() => [] as string[]);
  const out: AgentState[] = [];
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    const s = await readState(path.join(agentsDir(layout), n));
    if (s && processAlive(s.pid)) out.push(s);
  }
  return out;
}

/** DP_AGENTS's value for these agents: `ADDRESS=URL` pairs. */
export function agentsValue(states: readonly AgentState[]): string {
  return states.map((s) => `${s.address}=${s.url}`).join(',');
}

/** The secret file agents and coordinator use: the environment's, else the host's own (created on first use). */
export async function ensureAgentSecret(layout: HostLayout, env: NodeJS.ProcessEnv = process.env): Promise<NodeJS.ProcessEnv> {
  if (env[AGENT_SECRET_FILE_ENV] || env[AGENT_SECRET_ENV]) return {};
  const file = referenceAgentSecretFile(layout);
  await mkdir(layout.secrets, { recursive: true, mode: 0o700 });
  await writeFile(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return { [AGENT_SECRET_FILE_ENV]: file };
}

/** Starts the agents that do not run; answers every agent with its state. */
export async function startAgents(layout: HostLayout, o: { env?: NodeJS.ProcessEnv; log?: (m: string) => void; servers?: readonly string[] } = {}): Promise<AgentState[]> {
  const unknown = (o.servers ?? []).filter((x) => !TOPOLOGY.some((s) => s.uid === x));
  if (unknown.length) throw new Error(`no server ${unknown.join(', ')} in the reference host (servers: ${TOPOLOGY.map((s) => s.uid).join(', ')})`);
  const env = { ...(o.env ?? process.env) };
  Object.assign(env, await ensureAgentSecret(layout, env));
  const dir = agentsDir(layout);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const running = await runningAgents(layout);
  const out: AgentState[] = [];
  for (const s of TOPOLOGY.filter((x) => !o.servers?.length || o.servers.includes(x.uid))) {
    const already = running.find((r) => r.server === s.uid);
    if (already) {
      o.log?.(`agent of ${s.uid} already runs on ${already.url} (pid ${already.pid})`);
      out.push(already);
      continue;
    }
    const stateFile = path.join(dir, `${s.uid}.json`);
    await rm(stateFile, { force: true });
    const logFile = await open(path.join(dir, `${s.uid}.log`), 'a', 0o600);
    const child = spawn(process.execPath, [main, 'agent', '--server', s.uid, '--listen', `${s.address}:0`, '--host-root', layout.root, '--state-file', stateFile], {
      detached: true, stdio: ['ignore', logFile.fd, logFile.fd], env,
    });
    await logFile.close();
    let exited: number | null = null;
    child.on('exit', (code) => (exited = code ?? 1));
    child.unref();
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const st = await readState(stateFile);
      if (st && st.pid === child.pid) {
        out.push(st);
        o.log?.(`agent of ${s.uid} started on ${st.url} (pid ${st.pid})`);
        break;
      }
      if (exited !== null || Date.now() > deadline) {
        if (exited === null) child.kill('SIGKILL');
        const tail = (await readFile(path.join(dir, `${s.uid}.log`), 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
        throw new Error(`the agent of ${s.uid} did not start${exited !== null ? ` (exit ${exited})` : ''}${tail ? `: ${tail}` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return out;
}

/** Stops every running agent (SIGTERM, then SIGKILL after a while); answers the servers whose agent was stopped. */
export async function stopAgents(layout: HostLayout): Promise<string[]> {
  const stopped: string[] = [];
  for (const s of await runningAgents(layout)) {
    process.kill(s.pid, 'SIGTERM');
    for (let i = 0; i < 100 && processAlive(s.pid); i++) await new Promise((r) => setTimeout(r, 50));
    if (processAlive(s.pid)) process.kill(s.pid, 'SIGKILL');
    stopped.push(s.server);
  }
  for (const n of await readdir(agentsDir(layout)).catch(() => [] as string[])) {
    if (n.endsWith('.json')) await rm(path.join(agentsDir(layout), n), { force: true });
  }
  return stopped;
}
