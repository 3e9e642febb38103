import { Command } from 'commander';
import { check } from '../../engine/index.js';
import { openRepo, output, percent, UsageError, type RepoOptions } from '../context.js';

interface Opts extends RepoOptions {
  readData?: boolean;
  readDataSubset?: number;
}

export function register(program: Command): void {
  program
    .command('check')
    .description('verify the repository: structure always, data with --read-data or a sample')
    .option('--repo <dir>', 'repository directory')
    .option('--read-data', 'read every pack and verify every blob')
    .option('--read-data-subset <percent>', 'read this percentage of the packs, chosen at random', percent)
    .option('--json', 'progress as JSON lines, then a summary object')
    .action(async (opts: Opts) => {
      if (opts.readData && opts.readDataSubset !== undefined) throw new UsageError('give --read-data or --read-data-subset, not both');
      const out = output(opts);
      const repo = await openRepo(opts);
      try {
        const r = await check(repo, {
          readData: opts.readData,
          readDataSubset: opts.readDataSubset,
          // A command line answers nobody meanwhile: packs verified on this thread too, one worker (and its memory) fewer.
          packsHere: true,
          progress: { update: (phase, done, total) => out.progress({ phase, done, total }, { value: done, total, line: `${phase} ${done}/${total}` }) },
        });
        out.stopProgress();
        if (!opts.json) {
          for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
          for (const e of r.errors) process.stderr.write(`error: ${e}\n`);
        }
        out.summary(
          { ok: r.errors.length === 0, ...r },
          `${r.snapshots} snapshots, ${r.trees} trees, ${r.blobs} data blobs, ${r.packs} packs checked${r.packsRead ? `, ${r.packsRead} packs read in full` : ''}: ` +
            (r.errors.length ? `${r.errors.length} error(s): the repository is damaged` : `no errors${r.warnings.length ? `, ${r.warnings.length} warning(s)` : ''}`),
        );
        if (r.errors.length) process.exitCode = 12;
      } finally {
        await repo.close();
      }
    });
}
