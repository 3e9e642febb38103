// `bm-dataprotect host …`: the reference host (seeding, its Dovecot, what it holds). Every command honours
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bj) and --host-root DIR (default ./var/host).

import { Command } from 'commander';
import { describe } from '../../pg/settings.js';
import { settingsFromEnv } from '../../host/connection.js';
import { dovecotStatus, startDovecot, stopDovecot } from '../../host/reference/dovecot.js';
import { DEFAULT_HOST_ROOT, TOPOLOGY, fileLocations, hostLayout } from '../../host/reference/layout.js';
import { seedReference } from '../../host/reference/seed.js';
import { hostDatabase } from '../compose.js';
import { collect, output, UsageError, wholeNumber } from '../context.js';
import { duration } from '../output.js';
import { agentsValue, runningAgents, startAgents, stopAgents } from '../reference-agents.js';

interface HostOpts {
  hostRoot: string;
  json?: boolean;
}

interface SeedOpts extends HostOpts {
  users: number;
  seed: number;
  events?: number;
  contacts?: number;
  todos?: number;
  messages?: number;
  files: boolean;
  force?: boolean;
}

const rootOption = ['--host-root <dir>', "the reference host's files (mail spool, archive, file hosting, configuration)", DEFAULT_HOST_ROOT] as const;

export function register(program: Command): void {
  const host = program.command('host').description('the BlueMind reference host: seed it, run its IMAP server, show its layout');

  host
    .command('seed')
    .description('fill the reference host (database from DATABASE_URL, files under --host-root) with deterministic data')
    .requiredOption('--users <n>', 'number of users (split two thirds / one third across two domains)', wholeNumber)
    .option('--seed <n>', 'random seed: the same seed gives the same data', wholeNumber, 42)
    .option('--events <n>', 'events per user calendar (default 12)', wholeNumber)
    .option('--contacts <n>', 'contacts per user address book (default 10)', wholeNumber)
    .option('--todos <n>', 'tasks per user todolist (default 4)', wholeNumber)
    .option('--messages <n>', 'messages per mailbox (default 10)', wholeNumber)
    .option('--no-files', 'seed the database only (no mail spool, archive, file hosting or configuration files)')
    .option('--force', 'seed a database or host root that holds data the reference host did not create')
    .option(...rootOption)
    .option('--json', 'output as JSON lines')
    .action(async (opts: SeedOpts) => {
      const out = output(opts);
      const connection = hostDatabase();
      const s = await seedReference({
        connection, root: opts.hostRoot, users: opts.users, seed: opts.seed, eventsPerUser: opts.events,
        contactsPerUser: opts.contacts, todosPerUser: opts.todos, messagesPerUser: opts.messages, files: opts.files,
        force: opts.force, log: (line) => out.notice(line),
      });
      out.summary(
        { ...s },
        `seeded ${describe(connection)} and ${s.root} in ${duration(s.ms)}: ${s.domains} domains, ${s.users} users, ` +
          `${s.mailshares} mailshares, ${s.resources} resources, ${s.groups} groups, ${s.orgUnits} OUs; ${s.containers} containers ` +
          `with ${s.events} events, ${s.contacts} contacts, ${s.todos} tasks; ${s.messages} messages`,
      );
    });

  host
    .command('info')
    .description('servers, tags and where each part of the reference host lives')
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (opts: HostOpts) => {
      const out = output(opts);
      const layout = hostLayout(opts.hostRoot);
      const connection = hostDatabase();
      const servers = TOPOLOGY.map((s) => ({
        ...s,
        parts: s.tags.map((tag) => ({
          tag,
          ...(tag === 'bm/pgsql' ? { database: describe(connection) } : {}),
          locations: fileLocations(layout, s.uid, tag),
        })),
      }));
      const imap = await dovecotStatus(layout);
      out.summary(
        { root: layout.root, servers, imap },
        [
          `reference host at ${layout.root}`,
          ...servers.flatMap((s) => [
            `${s.uid} (${s.address})`,
            ...s.parts.map((p) => `  ${p.tag}: ${'database' in p ? p.database : p.locations.map((l) => l.fsPath).join(', ')}`),
          ]),
          `imap: ${imap.host}:${imap.port} ${imap.running ? `running (pid ${imap.pid})` : 'stopped'}`,
        ].join('\n'),
      );
    });

  const dovecot = host.command('dovecot').description("the reference host's IMAP server (Debian's dovecot, private configuration, not root)");
  dovecot
    .command('start')
    .description("generate the configuration under <host-root>/dovecot and start Dovecot on the mail server's address")
    .option('--port <n>', 'IMAP port, which must be free (default: 10143, or a free port when 10143 is taken)', wholeNumber)
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (opts: HostOpts & { port?: number }) => {
      const out = output(opts);
      const st = await startDovecot(hostLayout(opts.hostRoot), { port: opts.port, strictPort: opts.port !== undefined, log: (l) => out.notice(l) });
      out.summary({ ...st }, `dovecot running on ${st.host}:${st.port} (pid ${st.pid})`);
    });
  dovecot
    .command('stop')
    .description('stop the reference Dovecot')
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (opts: HostOpts) => {
      const r = await stopDovecot(hostLayout(opts.hostRoot));
      output(opts).summary({ ...r }, r.wasRunning ? 'dovecot stopped' : 'dovecot was not running');
    });
  dovecot
    .command('status')
    .description('whether the reference Dovecot runs, and where')
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (opts: HostOpts) => {
      const st = await dovecotStatus(hostLayout(opts.hostRoot));
      output(opts).summary({ ...st }, st.running ? `dovecot running on ${st.host}:${st.port} (pid ${st.pid})` : 'dovecot stopped');
      if (!st.running) process.exitCode = 1;
    });

  const agents = host.command('agents').description("the reference host's node agents: one per server, on the server's own address");
  agents
    .command('start')
    .description('start an agent for each server that has none running (127.0.0.1 and 127.0.0.2, free ports), detached')
    .option('--server <uid>', 'only the agent of this server (repeatable)', collect, [])
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (opts: HostOpts & { server: string[] }) => {
      const out = output(opts);
      const unknown = opts.server.filter((x) => !TOPOLOGY.some((s) => s.uid === x));
      if (unknown.length) throw new UsageError(`--server ${unknown.join(', ')}: no such server (servers: ${TOPOLOGY.map((s) => s.uid).join(', ')})`);
      const states = await startAgents(hostLayout(opts.hostRoot), { log: (l) => out.notice(l), servers: opts.server });
      out.summary({ agents: states, DP_AGENTS: agentsValue(states) }, [...states.map((a) => `${a.server} (${a.address}): ${a.url} (pid ${a.pid})`), `DP_AGENTS=${agentsValue(states)}`].join('\n'));
    });
  agents
    .command('stop')
    .description('stop the running agents')
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (opts: HostOpts) => {
      const stopped = await stopAgents(hostLayout(opts.hostRoot));
      output(opts).summary({ stopped }, stopped.length ? `stopped the agents of ${stopped.join(', ')}` : 'no agent was running');
    });
  agents
    .command('status')
    .description('the running agents, and the DP_AGENTS value that reaches them')
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (opts: HostOpts) => {
      const states = await runningAgents(hostLayout(opts.hostRoot));
      output(opts).summary({ agents: states, DP_AGENTS: agentsValue(states) }, states.length ? [...states.map((a) => `${a.server} (${a.address}): ${a.url} (pid ${a.pid})`), `DP_AGENTS=${agentsValue(states)}`].join('\n') : 'no agent runs');
      if (!states.length) process.exitCode = 1;
    });
}
