// Which agent serves which server, from the coordinator's environment: DP_AGENTS lists `ADDRESS=URL` pairs
// (comma- or space-separated), a server being matched by its address; the secret comes from DP_AGENT_SECRET_FILE.
// Unset: no agents, the coordinator backs up every part itself (a single-server installation).

import type { PartAgents } from '../dataprotect/generation/part-agents.js';
import { httpPartAgent } from './client.js';
import { agentSecretFromEnvironment } from './secret.js';

export const AGENTS_ENV = 'DP_AGENTS';

export class AgentConfigError extends Error {}

/** The `ADDRESS=URL` pairs of a DP_AGENTS value. */
export function parseAgents(value: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of value.split(/[\s,]+/).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const address = entry.slice(0, eq).trim();
    const url = entry.slice(eq + 1).trim();
    if (eq <= 0 || !/^https?:\/\/[^/\s]+\/?$/.test(url)) {
      throw new AgentConfigError(`${AGENTS_ENV}: ${JSON.stringify(entry)} is not ADDRESS=URL (e.g. 10.0.0.2=http://10.0.0.2:7970)`);
    }
    out.set(address, url);
  }
  return out;
}

/** Agents from a map of server address to URL; undefined when the map is empty. */
export function partAgents(urls: ReadonlyMap<string, string>, env: NodeJS.ProcessEnv = process.env): PartAgents | undefined {
  if (urls.size === 0) return undefined;
  const agents = new Map([...urls].map(([address, url]) => [address, httpPartAgent(url, () => agentSecretFromEnvironment(env))]));
  return (server) => agents.get(server.address) ?? null;
}

export function agentsFromEnvironment(env: NodeJS.ProcessEnv = process.env): PartAgents | undefined {
  return partAgents(parseAgents(env[AGENTS_ENV] ?? ''), env);
}
