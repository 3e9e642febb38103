import { spawn } from 'node:child_process';
import { lstat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { Archiver, defaultCacheDir, filesSeen, type SnapshotInfo } from '../../engine/index.js';
import { openRepo, output, UsageError, type RepoOptions } from '../context.js';
import { bytes, duration, eta, rate, type Output } from '../output.js';

interface BackupOpts extends RepoOptions {
  tag: string;
  server?: string;
  parent?: string;
  stdinFrom?: string;
  name?: string;
  renameDetection: boolean;
  cache: boolean;
}

export function register(program: Command): void {
  program
    .command('backup')
    .description('back up directory trees, or the output of a command, into a new snapshot of (server, tag)')
    .argument('[paths...]', 'directories or files to back up')
    .option('--repo <dir>', 'repository directory')
    .requiredOption('--tag <tag>', 'the part this snapshot is, e.g. mail/imap or bm/pgsql')
    .option('--server <name>', 'the server this snapshot belongs to (default: this host name)')
    .option('--parent <snapshot>', 'snapshot to detect changes against (default: latest of the same server and tag)')
    .option('--stdin-from <command>', 'back up the standard output of this shell command (e.g. a pg_dump)')
    .option('--name <file>', 'file name of the --stdin-from stream in the snapshot')
    .option('--no-rename-detection', 'read renamed or moved files again instead of recognising them by inode')
    .option('--no-cache', 'neither read nor write the local files cache (DP_CACHE_DIR, else ~/.cache/bm-dataprotect): find unchanged files in the parent snapshot instead')
    .option('--json', 'progress as JSON lines, then a summary object')
    .action(async (paths: string[], opts: BackupOpts) => {
      if (opts.stdinFrom && paths.length) throw new UsageError('give either paths or --stdin-from, not both');
      if (!opts.stdinFrom && paths.length === 0) throw new UsageError('nothing to back up: give one or more paths, or --stdin-from CMD --name FILE');
      if (opts.stdinFrom && !opts.name) throw new UsageError('--stdin-from needs --name FILE: the name the stream gets in the snapshot');
      if (opts.name && !opts.stdinFrom) throw new UsageError('--name only applies to --stdin-from');
      const out = output(opts);
      const repo = await openRepo(opts);
      const server = opts.server ?? hostname();
      let totalFiles = 0;
      let totalBytes = 0;
      const archiver = new Archiver(repo, {
        server,
        tag: opts.tag,
        parent: opts.parent,
        renameDetection: opts.renameDetection,
        cacheDir: opts.cache ? defaultCacheDir() : undefined,
        progress: {
          update: (s, current) =>
            out.progressDue() &&
            out.progress(
              { filesDone: filesSeen(s), bytesRead: s.bytesRead, bytesAdded: s.bytesAdded, current, totalFiles, totalBytes },
              { value: totalBytes ? s.bytesTotal : filesSeen(s), total: totalBytes || totalFiles, line: `${filesSeen(s)}/${totalFiles || '?'} files, ${bytes(s.bytesTotal)}, ${rate(s.bytesTotal, Date.now() - started)}, ETA ${totalBytes ? eta(s.bytesTotal, totalBytes, Date.now() - started) : '?'}` },
            ),
          error: (path, err) => out.warn(`${path}: ${err.message}`, { path }),
          notice: (m) => out.notice(m),
        },
      });
      const started = Date.now();
      let snap: SnapshotInfo;
      try {
        if (opts.stdinFrom) {
          await archiver.addStream('/' + opts.name!.replace(/^\/+/, ''), runCommand(opts.stdinFrom));
        } else {
          const abs = paths.map((p) => resolve(p));
          for (const p of abs) await lstat(p).catch(() => { throw new UsageError(`${p} does not exist or cannot be read`); });
          const stopScan = out.tty ? scan(abs, (f, b) => ((totalFiles = f), (totalBytes = b))) : () => {};
          try {
            for (const p of abs) await archiver.addTree(p, p, { statParents: true });
          } finally {
            stopScan();
          }
        }
        snap = await archiver.commit();
      } catch (err) {
        await archiver.abort();
        throw err;
      } finally {
        await repo.close();
      }
      printSummary(out, snap);
      if (snap.summary.errors > 0) process.exitCode = 3;
    });
}

export function printSummary(out: Output, snap: SnapshotInfo): void {
  const s = snap.summary;
  out.summary(
    { snapshot: snap.id, server: snap.server, tag: snap.tag, parent: snap.parent ?? null, time: snap.time, ...s },
    [
      `snapshot ${snap.id.slice(0, 8)} saved (server ${snap.server}, tag ${snap.tag}${snap.parent ? `, parent ${snap.parent.slice(0, 8)}` : ', no parent'})`,
      `files: ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnmodified} unchanged, ${s.filesRenamed} renamed or moved (not read again); ${s.dirs} directories`,
      `read ${bytes(s.bytesRead)} of ${bytes(s.bytesTotal)}; added to the repository: ${bytes(s.bytesAdded)} in ${s.blobsNew} new blobs (after dedup and compression)`,
      `took ${duration(s.durationMs)}${s.errors ? `; ${s.errors} item(s) could not be read (see warnings)` : ''}`,
    ].join('\n'),
  );
}

/** The command's stdout; a non-zero exit fails the backup with the end of its stderr. */
async function* runCommand(cmd: string): AsyncGenerator<Buffer> {
  const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, signal) => res(code ?? (signal ? 128 : 1)));
  });
  for await (const piece of child.stdout) yield piece as Buffer;
  const code = await exited;
  if (code !== 0) throw new Error(`the --stdin-from command exited with status ${code}${stderr.trim() ? `: ${stderr.trim()}` : ''}; no snapshot was saved`);
}

/**
 * Counts files and bytes ahead of the backup, for the progress bar's ETA, on a worker thread so that
 * it runs alongside the backup instead of competing with it for the main thread.
 */
function scan(paths: string[], report: (files: number, bytes: number) => void): () => void {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const fs = require('node:fs'); const path = require('node:path');
     let files = 0, bytes = 0, last = Date.now();
     const walk = (p) => {
       let st; try { st = fs.lstatSync(p); } catch { return; }
       if (st.isDirectory()) { let names = []; try { names = fs.readdirSync(p); } catch {} for (const n of names) walk(path.join(p, n)); }
       else if (st.isFile()) { files++; bytes += st.size; if (Date.now() - last > 200) { last = Date.now(); parentPort.postMessage({ files, bytes }); } }
     };
     for (const p of workerData) walk(p);
     parentPort.postMessage({ files, bytes, done: true });`,
    { eval: true, workerData: paths },
  );
  worker.unref();
  worker.on('message', (m: { files: number; bytes: number }) => report(m.files, m.bytes));
  worker.on('error', () => {});
  return () => void worker.terminate();
}
