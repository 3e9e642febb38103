import { Command } from 'commander';
import { filesSeen } from '../../engine/index.js';
import { openRepo, output, type RepoOptions } from '../context.js';
import { bytes } from '../output.js';

interface Opts extends RepoOptions {
  tag?: string;
  server?: string;
}

export function register(program: Command): void {
  program
    .command('snapshots')
    .description('list the snapshots, oldest first')
    .option('--repo <dir>', 'repository directory')
    .option('--tag <tag>', 'only this tag')
    .option('--server <name>', 'only this server')
    .option('--json', 'print a JSON array')
    .action(async (opts: Opts) => {
      const out = output(opts);
      const repo = await openRepo(opts);
      try {
        const list = await repo.listSnapshots({ tag: opts.tag, server: opts.server });
        if (opts.json) {
          process.stdout.write(JSON.stringify(list.map((s) => ({ id: s.id, time: s.time, server: s.server, tag: s.tag, paths: s.paths, parent: s.parent ?? null, hostname: s.hostname, meta: s.meta ?? null, summary: s.summary }))) + '\n');
          return;
        }
        const rows = list.map((s) => [s.id.slice(0, 8), s.time.replace('T', ' ').slice(0, 19), s.server, s.tag, String(filesSeen(s.summary)), bytes(s.summary.bytesTotal), bytes(s.summary.bytesAdded), s.paths.join(' ')]);
        out.say(table(['ID', 'Time (UTC)', 'Server', 'Tag', 'Files', 'Size', 'Added', 'Paths'], rows));
        out.say(`${list.length} snapshot(s)`);
      } finally {
        await repo.close();
      }
    });
}

export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  return [fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt)].join('\n');
}
