// `bm-dataprotect global-restore discover|check|run`: rebuild the installation (DATABASE_URL, --host-root) from
// one generation of a repository; `run --sandbox DIR` rehearses it beside the live installation instead.

import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { DEFAULT_HOST_ROOT } from '../../host/reference/layout.js';
import { checkGlobalRestore } from '../../dataprotect/global-restore/check.js';
import { discoverGenerations } from '../../dataprotect/global-restore/discover.js';
import { parseServerMap } from '../../dataprotect/global-restore/plan.js';
import { runGlobalRestore } from '../../dataprotect/global-restore/run.js';
import { rehearseGlobalRestore } from '../../dataprotect/global-restore/sandbox.js';
import { GenerationNotFoundError } from '../../dataprotect/generation/format.js';
import { installation, installation as compose } from '../compose.js';
import { collect, openRepo, output, UsageError, type RepoOptions } from '../context.js';
import { bytes, duration } from '../output.js';
import type { Output } from '../output.js';

interface TargetOptions extends RepoOptions {
  hostRoot: string;
  mapServer: string[];
}

const STATUS_MARK = { met: 'ok     ', 'not-met': 'NOT MET', warning: 'warning' } as const;

function installationOf(opts: TargetOptions) {
  return installation({ hostRoot: opts.hostRoot }).recovery;
}

function serverMap(opts: TargetOptions): Map<string, string> {
  try {
    return parseServerMap(opts.mapServer);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function runLog(out: Output) {
  return { info: (m: string) => out.notice(m), warn: (m: string) => out.warn(m), error: (m: string) => out.warn(m) };
}

async function confirmed(out: Output, question: string): Promise<boolean> {
  if (out.json || !process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export function register(program: Command): void {
  const gr = program.command('global-restore').description('disaster recovery: rebuild the whole installation from one generation');
  const target = (c: Command) =>
    c
      .option('--repo <dir>', 'repository directory')
      .option('--host-root <dir>', "the installation's files (reference host)", DEFAULT_HOST_ROOT)
      .option('--map-server <old=new>', 'restore the parts of server OLD (uid or address) onto server NEW of this installation; repeatable', collect, [])
      .option('--json', 'JSON lines');

  gr.command('discover')
    .description('list the generations of a repository, from the repository alone (no database needed)')
    .option('--repo <dir>', 'repository directory')
    .option('--json', 'one JSON object')
    .action(async (opts: RepoOptions) => {
      const out = output(opts);
      const repo = await openRepo(opts);
      try {
        const gens = await discoverGenerations(repo);
        const lines = gens.map((g) =>
          `${g.id}  ${g.protectionTime}  ${g.status.padEnd(7)}  BlueMind ${g.productVersion}  format ${g.formatVersion}  ${bytes(g.sizeRead)}\n` +
          g.parts.map((p) => `    ${p.server.padEnd(10)} ${p.tag.padEnd(16)} ${p.status.padEnd(7)} ${bytes(p.sizeRead)}`).join('\n'),
        );
        out.summary({ generations: gens }, gens.length ? lines.join('\n') : `no generation in ${repo.location}`);
      } finally {
        await repo.close();
      }
    });

  target(gr.command('check'))
    .description('check the prerequisites of restoring GENERATION here, touching nothing')
    .argument('<generation>', "generation id or 'latest'")
    .option('--wipe', 'the run will wipe this installation first')
    .action(async (ref: string, opts: TargetOptions & { wipe?: boolean }) => {
      const out = output(opts);
      const servers = serverMap(opts);
      const repo = await openRepo(opts);
      try {
        const c = await checkGlobalRestore({ repo, installation: installationOf(opts), generation: ref, servers, wipe: opts.wipe }).catch(usage);
        const text = c.prerequisites.map((p) => `${STATUS_MARK[p.status]}  ${p.message}${p.advice && p.status !== 'met' ? `\n         → ${p.advice}` : ''}`).join('\n');
        out.summary({ ...c }, `generation ${c.generation}\n${text}\n${c.alreadyRestored ? 'already restored: a run does nothing (--wipe restores it again)' : c.ok ? 'ready to restore' : 'not ready: see the lines marked NOT MET'}`);
        if (!c.ok) process.exitCode = 1;
      } finally {
        await repo.close();
      }
    });

  target(gr.command('run'))
    .description('restore every part of GENERATION into this installation (resumable: run it again after an interruption)')
    .argument('<generation>', "generation id or 'latest'")
    .option('--yes', 'do not ask for confirmation')
    .option('--wipe', "remove this installation's data first (its databases and data directories)")
    .option('--sandbox <dir>', 'rehearse instead: restore into scratch databases and DIR, compare with the generation, report, remove them')
    .action(async (ref: string, opts: TargetOptions & { yes?: boolean; wipe?: boolean; sandbox?: string }) => {
      const out = output(opts);
      const servers = serverMap(opts);
      if (opts.sandbox && opts.wipe) throw new UsageError('--sandbox never touches the installation: --wipe makes no sense with it');
      const repo = await openRepo(opts);
      try {
        const installation = installationOf(opts);
        const progress = (p: { part: string; partsDone: number; partsTotal: number; bytes: number; bytesTotal: number; files: number; filesTotal: number; etaSeconds: number | null }) =>
          out.progress({ ...p }, { value: p.bytes, total: p.bytesTotal, line: `part ${p.partsDone + 1}/${p.partsTotal} ${p.part}: ${p.files}/${p.filesTotal} files${p.etaSeconds !== null ? `, ETA ${duration(p.etaSeconds * 1000)}` : ''}` });
        if (opts.sandbox) {
          const r = await rehearseGlobalRestore({ repo, installation, generation: ref, servers, dir: opts.sandbox, log: runLog(out), progress }).catch(usage);
          out.stopProgress();
          const text = r.parts.map((p) => `${p.differences.length ? 'DIFFERS' : 'same   '}  ${p.key}: ${p.detail}${p.differences.map((d) => `\n         ${d}`).join('')}`).join('\n');
          const verdict = r.failure ? `the generation does not restore: ${r.failure}` : r.ok ? 'the generation restores exactly' : 'the restored copy differs from the generation';
          out.summary({ ...r }, `rehearsal of generation ${r.generation} in ${duration(r.durationMs)}:\n${text ? `${text}\n` : ''}${verdict}; sandbox removed`);
          if (!r.ok) process.exitCode = 1;
          return;
        }
        if (!opts.yes && !(await confirmed(out, `Rebuild this installation from generation ${ref}${opts.wipe ? ', wiping its data first' : ''}?`))) {
          throw new UsageError('a global restore rewrites the whole installation: confirm with --yes');
        }
        // The file parts of servers with a node agent are restored by that agent, on that server.
        const agents = await compose(opts).agents();
        const r = await runGlobalRestore({
          repo, installation, generation: ref, servers, wipe: opts.wipe, log: runLog(out), progress, agents,
          onPart: (part, state) => (out.json ? out.line({ type: 'part', part, state }) : undefined),
        }).catch(usage);
        out.stopProgress();
        const text = r.parts.map((p) => `${p.state === 'restored' ? 'restored        ' : 'already restored'}  ${p.key} → ${p.target}${p.detail ? `: ${p.detail}` : ''}`).join('\n');
        if (r.alreadyRestored) {
          out.summary({ ...r }, `generation ${r.generation} was already restored completely here: nothing to do (--wipe restores it again)\n${text}`);
          return;
        }
        out.summary(
          { ...r },
          `generation ${r.generation} restored${r.resumed ? ' (resumed)' : ''} in ${duration(r.durationMs)}\n${text}\n` +
            'next: reinstall the certificate and the subscription, re-save the firewall, reinstall the plugins',
        );
      } finally {
        await repo.close();
      }
    });
}

/** A generation that does not exist is the user's mistake, not a failure. */
function usage(e: unknown): never {
  if (e instanceof GenerationNotFoundError) throw new UsageError(e.message);
  throw e;
}
