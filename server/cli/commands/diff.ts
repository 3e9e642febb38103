import { Command } from 'commander';
import { diffSnapshots } from '../../engine/index.js';
import { openRepo, output, type RepoOptions } from '../context.js';

export function register(program: Command): void {
  program
    .command('diff')
    .description('what was added, removed or modified between two snapshots')
    .argument('<from>', 'older snapshot')
    .argument('<to>', 'newer snapshot')
    .option('--repo <dir>', 'repository directory')
    .option('--json', 'one JSON line per change, then a summary object')
    .action(async (from: string, to: string, opts: RepoOptions) => {
      const out = output(opts);
      const repo = await openRepo(opts);
      try {
        const a = await repo.findSnapshot(from);
        const b = await repo.findSnapshot(to);
        const counts = { added: 0, removed: 0, modified: 0 };
        const mark = { added: '+', removed: '-', modified: 'M' };
        for await (const c of diffSnapshots(repo, a, b)) {
          counts[c.kind]++;
          if (opts.json) out.line({ type: 'change', kind: c.kind, path: c.path, nodeType: c.type });
          else out.say(`${mark[c.kind]}    ${c.path}${c.type === 'dir' ? '/' : ''}`);
        }
        out.summary({ from: a.id, to: b.id, ...counts }, `${counts.added} added, ${counts.removed} removed, ${counts.modified} modified`);
      } finally {
        await repo.close();
      }
    });
}
