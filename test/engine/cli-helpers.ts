import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/server/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built command line (`npm test` builds it first). */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

export function startCli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first (npm test does)`);
  return spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Runs the command with --json and kills it with SIGKILL at the first JSON line `point` accepts; resolves with
 * the lines it printed and whether it was killed (false: it ended first).
 */
export function killAt(args: string[], point: (l: Record<string, unknown>) => boolean, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<{ killed: boolean; lines: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const child = startCli(args, opts);
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    let killed = false;
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const l = JSON.parse(line) as Record<string, unknown>;
        lines.push(l);
        if (!killed && point(l)) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.stderr!.resume();
    child.on('error', reject);
    child.on('close', () => resolve({ killed, lines }));
  });
}
