import { Command } from 'commander';
import { Repository } from '../../engine/index.js';
import { openStorage } from '../../storage/index.js';
import { output, repoPath, type RepoOptions } from '../context.js';

export function register(program: Command): void {
  const repo = program.command('repo').description('manage repositories');
  repo
    .command('init')
    .description('create an empty repository in a directory (a local disk or an NFS mount)')
    .option('--repo <dir>', 'repository directory')
    .option('--json', 'print the result as JSON')
    .action(async (opts: RepoOptions) => {
      const out = output(opts);
      const dir = repoPath(opts);
      const r = await Repository.init(openStorage(dir));
      out.summary({ repository: dir, id: r.config.id, version: r.config.version, chunkers: r.config.chunkers }, `created repository ${r.config.id.slice(0, 8)} at ${dir} (format version ${r.config.version})`);
    });
}
