// `bm-dataprotect dump GENERATION|latest`: a generation's files as a tar stream on standard output (or a plain
// folder with --output), for a tape system or any tool that wants plain files and not this program.

import { Command } from 'commander';
import { openContent, RepositoryNotFoundError } from '../../engine/index.js';
import { exportEntries, exportParts, parsePartRef } from '../../dataprotect/export/entries.js';
import { ExportExistsError, exportToFolder } from '../../dataprotect/export/folder.js';
import { TarWriter } from '../../dataprotect/export/tar.js';
import { findGeneration, GenerationNotFoundError } from '../../dataprotect/generation/format.js';
import { openLocation } from '../../dataprotect/generation/repository.js';
import { collect, output, repoPath, UsageError, type RepoOptions } from '../context.js';
import { bytes, duration } from '../output.js';

interface DumpOpts extends RepoOptions {
  part?: string;
  include?: string[];
  output?: string;
}

export function register(program: Command): void {
  program
    .command('dump')
    .description('write the files of a generation as a tar stream on standard output (one folder per part: SERVER/TAG/...), or as a plain folder with --output')
    .argument('<generation>', "generation id, or 'latest' (the newest valid generation)")
    .option('--repo <dir>', 'repository directory')
    .option('--part <server:tag>', 'only this part, e.g. bm-mail:mail/imap')
    .option('--include <path>', "only this path of each part (e.g. /spool/example.org/jdoe) and what is below it (repeatable)", collect)
    .option('--output <dir>', 'write DIR/<generation>/... instead of a tar stream, hard-linking the files unchanged since the previous export there, and point DIR/last at it')
    .option('--json', 'with --output: the summary as a JSON object')
    .action(async (ref: string, opts: DumpOpts) => {
      // Standard output carries the tar stream: nothing else may be written there.
      if (opts.json && !opts.output) throw new UsageError('--json applies to --output only (standard output carries the tar stream)');
      const out = output(opts);
      if (!opts.output && process.stdout.isTTY) throw new UsageError('standard output is a terminal: pipe the tar stream somewhere (| tar -t, > file.tar) or use --output DIR');
      let only: { server: string; tag: string } | undefined;
      try {
        only = opts.part ? parsePartRef(opts.part) : undefined;
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const location = repoPath(opts);
      const repo = await openLocation(location);
      if (!repo) throw new RepositoryNotFoundError(`no repository at ${location}`);
      const started = Date.now();
      try {
        let g;
        try {
          g = await findGeneration(repo, ref);
        } catch (err) {
          if (err instanceof GenerationNotFoundError) throw new UsageError(err.message);
          throw err;
        }
        const parts = exportParts(g, only, (m) => out.warn(m));
        const entries = exportEntries(repo, parts, opts.include);
        if (opts.output) {
          let s;
          try {
            s = await exportToFolder(repo, g.record.id, entries, opts.output);
          } catch (err) {
            if (err instanceof ExportExistsError) throw new UsageError(err.message);
            throw err;
          }
          out.summary(
            { generation: g.record.id, ...s },
            `generation ${g.record.id} exported to ${s.folder}: ${s.files} files, ${bytes(s.bytesWritten)} written, ` +
              `${s.reused} unchanged files (${bytes(s.bytesReused)}) linked to ${s.previous ? `the export of ${s.previous}` : 'nothing (no previous export)'}; ` +
              `${s.dirs} directories, ${s.symlinks} symlinks, ${s.hardlinks} hard links in ${duration(Date.now() - started)}`,
          );
          return;
        }
        // A reader that stops early (`| head`, a closed tape) ends the dump without a stack trace.
        let closed = false;
        process.stdout.on('error', (e: NodeJS.ErrnoException) => {
          if (e.code === 'EPIPE') closed = true;
        });
        const tar = new TarWriter(process.stdout);
        try {
          for await (const e of entries) {
            const n = e.node;
            await tar.add(
              { path: e.path, type: e.type, mode: n.mode, uid: n.uid, gid: n.gid, mtimeNs: n.mtime, size: n.size, linkTarget: e.type === 'hardlink' ? e.linkTo : e.type === 'symlink' ? n.target ?? '' : undefined },
              e.type === 'file' ? openContent(repo, n) : undefined,
            );
          }
          await tar.end();
        } catch (err) {
          if (closed || (err as NodeJS.ErrnoException).code === 'EPIPE') {
            process.exitCode = 1;
            process.stderr.write('bm-dataprotect: the reader closed the tar stream before its end\n');
            return;
          }
          throw err;
        }
      } finally {
        await repo.close();
      }
    });
}
