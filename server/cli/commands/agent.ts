// `bm-dataprotect agent`: the node agent of one BlueMind server, in the foreground (a service manager runs it).
// It backs up that server's parts into the shared repository when the coordinator asks; see server/agent/README.md.
// With --local it is the backup process of the plugin's server instead (server/agent/local.ts): every server of the
// installation on loopback, the secret from its input, started and stopped by the server.

import { writeFile, rename } from 'node:fs/promises';
import { Command } from 'commander';
import { serveBackupProcess } from '../../agent/local.js';
import { startAgent } from '../../agent/server.js';
import { AGENT_SECRET_ENV, AGENT_SECRET_FILE_ENV, agentSecretFromEnvironment } from '../../agent/secret.js';
import { DEFAULT_HOST_ROOT } from '../../host/reference/layout.js';
import { installation } from '../compose.js';
import { output, UsageError } from '../context.js';

export const DEFAULT_AGENT_PORT = 7970;

interface AgentOpts {
  server?: string;
  local?: boolean;
  listen?: string;
  hostRoot: string;
  stateFile?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('agent')
    .description("run the node agent of one server: it backs up that server's parts into the shared repository when the coordinator asks")
    .option('--server <uid>', 'the server this agent serves (its uid in the installation, e.g. bm-mail)')
    .option('--local', "the plugin's server's backup process: every server, on loopback free ports, the secret on standard input; it says where it answers on standard output and stops when its input ends")
    .option('--listen <address[:port]>', `where to listen (default: the server's own address, port ${DEFAULT_AGENT_PORT}; port 0 takes a free one)`)
    .option('--host-root <dir>', "the reference host's files (mail spool, archive, file hosting, configuration)", DEFAULT_HOST_ROOT)
    .option('--state-file <file>', 'write {server, address, url, pid} there once listening (for a supervisor)')
    .option('--json', 'log as JSON lines')
    .action(async (opts: AgentOpts) => {
      const out = output(opts);
      if (opts.local) {
        const { host, recovery } = installation(opts);
        await serveBackupProcess({ host, installation: recovery, log: (l) => process.stderr.write(`${l}\n`) });
        return;
      }
      if (!opts.server) throw new UsageError('give --server UID (the server this agent serves), or --local');
      const secret = await agentSecretFromEnvironment();
      if (!secret) throw new UsageError(`no agent secret: set ${AGENT_SECRET_FILE_ENV} to a file only this user can read (or ${AGENT_SECRET_ENV}), the same as the coordinator's`);
      const { host, recovery } = installation(opts);
      const server = (await host.servers()).find((s) => s.uid === opts.server);
      if (!server) throw new UsageError(`no server ${opts.server} in this installation (servers: ${(await host.servers()).map((s) => s.uid).join(', ')})`);
      const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(opts.listen ?? server.address);
      if (!m) throw new UsageError(`--listen ${opts.listen}: give ADDRESS or ADDRESS:PORT`);
      const address = m[1].replace(/^\[|\]$/g, '');
      const port = m[2] !== undefined ? Number(m[2]) : DEFAULT_AGENT_PORT;
      const agent = await startAgent({ server, host, installation: recovery, secret, listen: { address, port }, log: (l) => out.notice(l) });
      if (opts.stateFile) {
        const tmp = `${opts.stateFile}.${process.pid}.tmp`;
        await writeFile(tmp, JSON.stringify({ server: server.uid, address: server.address, url: agent.url, pid: process.pid }) + '\n', { mode: 0o600 });
        await rename(tmp, opts.stateFile);
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await agent.close();
      out.notice('agent stopped');
    });
}
