import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentConfigError, agentsFromEnvironment, parseAgents } from '../../server/agent/config.js';
import { AgentSecretError, agentSecretFromEnvironment, authorized } from '../../server/agent/secret.js';
import { runCli } from '../engine/cli-helpers.js';

// The agents' configuration: DP_AGENTS, the secret and its check; the commands' refusals.

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dp-agent-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('agent configuration', () => {
  it('DP_AGENTS maps server addresses to agents; unset means none; a malformed entry is named', () => {
    expect([...parseAgents('10.0.0.1=http://10.0.0.1:7970, 10.0.0.2=http://10.0.0.2:7970/')]).toEqual([
      ['10.0.0.1', 'http://10.0.0.1:7970'], ['10.0.0.2', 'http://10.0.0.2:7970/'],
    ]);
    expect(agentsFromEnvironment({})).toBeUndefined();
    const agents = agentsFromEnvironment({ DP_AGENTS: '127.0.0.2=http://127.0.0.2:7970' })!;
    expect(agents({ uid: 'bm-mail', address: '127.0.0.2', tags: [] })?.endpoint).toBe('http://127.0.0.2:7970');
    expect(agents({ uid: 'bm-master', address: '127.0.0.1', tags: [] })).toBeNull();
    expect(() => parseAgents('127.0.0.2')).toThrow(AgentConfigError);
    expect(() => parseAgents('127.0.0.2=ftp://x')).toThrow(/"127.0.0.2=ftp:\/\/x" is not ADDRESS=URL/);
  });

  it('the secret: from an owner-only file, refused when others can read it or when short; compared whole', async () => {
    const secret = randomBytes(32).toString('hex');
    const file = path.join(dir, 'agent.key');
    await writeFile(file, secret + '\n', { mode: 0o600 });
    expect(await agentSecretFromEnvironment({ DP_AGENT_SECRET_FILE: file })).toBe(secret);
    const open = path.join(dir, 'open.key');
    await writeFile(open, secret, { mode: 0o644 });
    await expect(agentSecretFromEnvironment({ DP_AGENT_SECRET_FILE: open })).rejects.toThrow(/chmod 600/);
    await expect(agentSecretFromEnvironment({ DP_AGENT_SECRET: 'short' })).rejects.toThrow(AgentSecretError);
    expect(await agentSecretFromEnvironment({})).toBeUndefined();

    expect(authorized(`Bearer ${secret}`, secret)).toBe(true);
    expect(authorized(secret, secret)).toBe(false);
    expect(authorized(undefined, secret)).toBe(false);
    expect(authorized(`Bearer ${secret.slice(0, -1)}`, secret)).toBe(false);
    expect(authorized(`Bearer ${secret}x`, secret)).toBe(false);
  });

  it('`agent` refuses to start without a secret; `host agents` names an unknown server; status says none runs', async () => {
    const env = { DP_AGENT_SECRET: '', DP_AGENT_SECRET_FILE: '' };
    const a = await runCli(['agent', '--server', 'bm-mail', '--host-root', dir], { env });
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/no agent secret: set DP_AGENT_SECRET_FILE/);
    const b = await runCli(['host', 'agents', 'start', '--server', 'bm-nope', '--host-root', dir], { env });
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--server bm-nope: no such server \(servers: bm-master, bm-mail\)/);
    const c = await runCli(['host', 'agents', 'status', '--host-root', dir], { env });
    expect(c.code).toBe(1);
    expect(c.stdout).toMatch(/no agent runs/);
  });
});

describe('an agent that stops answering', () => {
  it('a part whose agent goes silent (no line within the idle time) is INVALID, saying so; the run is not held', async () => {
    const { createServer } = await import('node:http');
    const { httpPartAgent } = await import('../../server/agent/client.js');
    // Answers like an agent, then goes silent: what a stopped (SIGSTOP) or cut-off agent looks like.
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(JSON.stringify({ type: 'started', agent: { server: 'bm-mail', address: '127.0.0.2', protocol: 1 } }) + '\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      // fetch's first call loads its HTTP client, which on a busy machine takes longer than the idle time: done
      // here first, so that the idle time below is the agent's silence alone.
      const warm = new AbortController();
      const first = await fetch(url, { signal: warm.signal });
      expect(first.status).toBe(200);
      warm.abort();
      const agent = httpPartAgent(url, async () => randomBytes(32).toString('hex'), { idleMs: 1000 });
      const req = { generation: 'g', server: 'bm-mail', tag: 'mail/imap', time: new Date().toISOString(), repository: '/nowhere' };
      const part = await agent.backup(req, { bytes: () => {} });
      expect(part.status).toBe('INVALID');
      expect(part.messages[0]).toBe(`the agent at ${url} stopped answering while backing up the part (it sent nothing for 1 s); nothing of it is in this generation: check that the agent runs`);
      await expect(agent.restoreTree!({ ...req, key: 'bm-mail mail/imap', snapshot: 's', locations: [], changes: [] }, { progress: () => {} })).rejects.toThrow(/stopped answering during the restore \(it sent nothing for 1 s\)/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
