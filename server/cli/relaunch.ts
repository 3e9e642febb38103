import { spawn } from 'node:child_process';

/**
 * `restore` and `check` run for long and allocate steadily on the main thread (trees, plans, blob ids), so
 * V8 grows that thread's young generation to its largest (two 16 MiB semi-spaces on a 64-bit host): ~30 MiB
 * of a restore's peak memory that are only garbage waiting for the next scavenge. Node takes the size from
 * the command line only (a flag set later is not read), so these commands start the CLI again, in a child
 * process with a small young generation; this process only waits for it, passes signals on and exits as it
 * does (~6 MiB of its own: it loaded nothing but the command line's modules). The codec workers have their
 * own limit (codec-pool.ts).
 */
const COMMANDS = new Set(['restore', 'check']);

/** The young generation's semi-space of the relaunched CLI, in MiB. */
export const SEMI_SPACE_MB = 1;

const FLAG = '--max-semi-space-size';
/** Set in the child's environment (and removed there at once): it is the relaunched one. */
const CHILD = 'BM_DATAPROTECT_RELAUNCHED';

/**
 * The Node arguments of the child that runs `argv`'s command, or null when it runs here: another command, the
 * child itself, or Node already given a semi-space size (the user's own choice).
 */
export function relaunchArgs(argv: string[], execArgv: string[], env: NodeJS.ProcessEnv): string[] | null {
  const word = command(argv);
  if (!word || !COMMANDS.has(word) || env[CHILD] === '1') return null;
  if (execArgv.some((a) => a === FLAG || a.startsWith(`${FLAG}=`)) || (env.NODE_OPTIONS ?? '').includes(FLAG)) return null;
  return [...execArgv, `${FLAG}=${SEMI_SPACE_MB}`, ...argv.slice(1)];
}

/** The command word: the first argument that is neither an option nor the value of the one global option that takes one. */
function command(argv: string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--password-file') i++;
    else if (!argv[i].startsWith('-')) return argv[i];
  }
  return undefined;
}

/** Whether `argv`'s command was handed to a child (this process exits as the child does); else it runs here. */
export function relaunch(argv: string[]): boolean {
  if (process.env[CHILD] === '1') {
    // The child: it ends when the launcher is gone (killed by a signal it cannot pass on, SIGKILL), as it
    // would have had it been the one killed, instead of running on unseen with the repository's lock.
    delete process.env[CHILD];
    process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
    (process.channel as { unref?(): void } | undefined)?.unref?.();
    return false;
  }
  const args = relaunchArgs(argv, process.execArgv, process.env);
  if (!args) return false;
  // The IPC channel only lets the child see this process end, whatever ends it.
  const child = spawn(process.execPath, args, { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env: { ...process.env, [CHILD]: '1' } });
  // A signal for this process (a service manager's SIGTERM, a terminal's SIGINT) is the child's: passed on,
  // and this process ends as the child did.
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const pass = (s: NodeJS.Signals) => child.kill(s);
  for (const s of signals) process.on(s, pass);
  child.on('error', (err) => {
    process.stderr.write(`bm-dataprotect: cannot start ${process.execPath}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const s of signals) process.removeListener(s, pass);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
  return true;
}
