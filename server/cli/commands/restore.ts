import { Command } from 'commander';
import { resolve } from 'node:path';
import { defaultCacheDir, restore } from '../../engine/index.js';
import { collect, openRepo, output, UsageError, type RepoOptions } from '../context.js';
import { bytes, duration, eta, rate } from '../output.js';

interface Opts extends RepoOptions {
  tag?: string;
  server?: string;
  target?: string;
  include?: string[];
}

export function register(program: Command): void {
  program
    .command('restore')
    .description('restore a snapshot (or some paths of it) under a target directory')
    .argument('<snapshot>', "snapshot id (or a unique prefix), or 'latest'")
    .option('--repo <dir>', 'repository directory')
    .option('--tag <tag>', "with 'latest': the latest snapshot of this tag")
    .option('--server <name>', "with 'latest': the latest snapshot of this server")
    .option('--target <dir>', 'directory to restore into (created if missing)')
    .option('--include <path>', 'restore only this path of the snapshot and what is below it (repeatable)', collect)
    .option('--json', 'progress as JSON lines, then a summary object')
    .action(async (ref: string, opts: Opts) => {
      if (!opts.target) throw new UsageError('missing --target DIR: where to restore to');
      for (const p of opts.include ?? []) {
        if (p.split('/').includes('..')) throw new UsageError(`--include ${p}: give a path inside the snapshot, without '..'`);
      }
      const out = output(opts);
      // The index through the local cache: a restore of one mailbox reads the few blobs it needs, not every index file.
      const repo = await openRepo(opts, { indexCache: defaultCacheDir(), notice: (m) => out.warn(m) });
      try {
        const snap = await repo.findSnapshot(ref, { tag: opts.tag, server: opts.server });
        const started = Date.now();
        const target = resolve(opts.target);
        const s = await restore(repo, snap, {
          target,
          include: opts.include,
          progress: {
            update: (p) =>
              out.progress(
                { files: p.files, filesTotal: p.filesTotal, bytes: p.bytes, bytesTotal: p.bytesTotal },
                { value: p.bytes, total: p.bytesTotal, line: `${p.files}/${p.filesTotal} files, ${bytes(p.bytes)}/${bytes(p.bytesTotal)}, ${rate(p.bytes, Date.now() - started)}, ETA ${eta(p.bytes, p.bytesTotal, Date.now() - started)}` },
              ),
            error: (path, err) => out.warn(`${path}: ${err.message}`, { path }),
          },
        });
        out.summary(
          { snapshot: snap.id, target, ...s },
          `restored snapshot ${snap.id.slice(0, 8)} to ${target}: ${s.files} files (${bytes(s.bytes)}), ${s.dirs} directories, ${s.symlinks} symlinks, ${s.hardlinks} hard links; ` +
            `read ${bytes(s.bytesFetched)} from ${s.packsRead} pack(s) in ${duration(s.durationMs)}` +
            (s.errors ? `\n${s.errors} item(s) failed${s.damage.length ? `, ${s.damage.length} because the repository is damaged (run 'bm-dataprotect check --read-data')` : ''}` : '') +
            (s.skipped ? `\n${s.skipped} item(s) skipped below directories that could not be restored` : ''),
        );
        if (s.damage.length) process.exitCode = 12;
        else if (s.errors) process.exitCode = 1;
      } finally {
        await repo.close();
      }
    });
}
