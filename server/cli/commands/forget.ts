import { Command } from 'commander';
import { forgetSnapshots, prune, type ForgetPolicy } from '../../engine/index.js';
import { duration, openRepo, output, wholeNumber, type RepoOptions } from '../context.js';
import { bytes } from '../output.js';

interface Opts extends RepoOptions, ForgetPolicy {
  tag?: string;
  server?: string;
  prune?: boolean;
  dryRun?: boolean;
  grace?: number;
}

const GRACE_HELP = 'how long unused data stays marked before a later prune deletes it (default 24h; 0 deletes at once, only when no backup can be running)';


export function register(program: Command): void {
  program
    .command('forget')
    .description('remove the snapshots a retention policy does not keep, per (server, tag)')
    .option('--repo <dir>', 'repository directory')
    .option('--keep-last <n>', 'keep the n newest snapshots', wholeNumber)
    .option('--keep-daily <n>', 'keep the newest snapshot of each of the last n days that have one', wholeNumber)
    .option('--keep-weekly <n>', 'keep the newest snapshot of each of the last n weeks', wholeNumber)
    .option('--keep-monthly <n>', 'keep the newest snapshot of each of the last n months', wholeNumber)
    .option('--keep-yearly <n>', 'keep the newest snapshot of each of the last n years', wholeNumber)
    .option('--tag <tag>', 'only snapshots of this tag')
    .option('--server <name>', 'only snapshots of this server')
    .option('--prune', 'then remove the data no snapshot needs any more')
    .option('--grace <duration>', GRACE_HELP, duration)
    .option('--dry-run', 'say what would be removed, remove nothing')
    .option('--json', 'print the decisions and the summary as JSON')
    .action(async (opts: Opts) => {
      const out = output(opts);
      const repo = await openRepo(opts);
      try {
        const policy: ForgetPolicy = { keepLast: opts.keepLast, keepDaily: opts.keepDaily, keepWeekly: opts.keepWeekly, keepMonthly: opts.keepMonthly, keepYearly: opts.keepYearly };
        const r = await forgetSnapshots(repo, policy, { filter: { tag: opts.tag, server: opts.server }, dryRun: opts.dryRun, notice: (m) => out.notice(m) });
        for (const g of r.groups) {
          out.say(`${g.server} ${g.tag}: keep ${g.keep.length}, remove ${g.remove.length}`);
          for (const k of g.keep) out.say(`  keep   ${k.id.slice(0, 8)} ${k.time}  (${k.reasons.join(', ')})`);
          for (const x of g.remove) out.say(`  remove ${x.id.slice(0, 8)} ${x.time}`);
        }
        let pruned = null;
        if (opts.prune && !opts.dryRun && r.removed > 0) pruned = await prune(repo, { grace: opts.grace, progress: { notice: (m) => out.notice(m) } });
        out.summary(
          { ...r, dryRun: Boolean(opts.dryRun), prune: pruned },
          `${opts.dryRun ? 'would remove' : 'removed'} ${r.removed} snapshot(s)` + (pruned ? `; prune freed ${bytes(pruned.bytesFreed)} (${pruned.packsDeleted} packs deleted, ${pruned.packsRepacked} repacked)` : ''),
        );
      } finally {
        await repo.close();
      }
    });

  program
    .command('prune')
    .description('remove the data that no snapshot needs (safe to interrupt)')
    .option('--repo <dir>', 'repository directory')
    .option('--grace <duration>', GRACE_HELP, duration)
    .option('--dry-run', 'say what would be freed, change nothing')
    .option('--json', 'progress as JSON lines, then a summary object')
    .action(async (opts: Opts) => {
      const out = output(opts);
      const repo = await openRepo(opts);
      try {
        const s = await prune(repo, {
          dryRun: opts.dryRun,
          grace: opts.grace,
          progress: { update: (phase, done, total) => out.progress({ phase, done, total }, { value: done, total, line: phase }), notice: (m) => out.notice(m) },
        });
        out.summary(
          { dryRun: Boolean(opts.dryRun), ...s },
          `${opts.dryRun ? 'would free' : 'freed'} ${bytes(s.bytesFreed)}: ${s.packsDeleted} packs deleted, ${s.packsRepacked} repacked into ${s.packsWritten}, ${s.packsKept} kept; ${s.blobsRemoved} blobs removed` +
            (s.packsPending ? `; ${s.packsPending} packs (${bytes(s.bytesPending)}) marked, deleted by a prune once their grace period has passed` : ''),
        );
      } finally {
        await repo.close();
      }
    });
}
