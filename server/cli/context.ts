import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { Repository, type OpenOptions } from '../engine/index.js';
import { environmentPassword, openStorage } from '../storage/index.js';
import { Output } from './output.js';

/** Options every repository command shares. */
export interface RepoOptions {
  repo?: string;
  json?: boolean;
}

/** A usage error: the command line itself is wrong (exit code 2, see exit-codes.ts). */
export class UsageError extends Error {}

/** The repository location of --repo (or DP_REPOSITORY): a relative directory is taken from the working directory. */
export function repoPath(opts: RepoOptions): string {
  const dir = opts.repo ?? process.env.DP_REPOSITORY;
  if (!dir) throw new UsageError('missing --repo DIR (or the DP_REPOSITORY environment variable): where the repository is');
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(dir) ? dir : resolve(dir);
}

/** The repository of --repo; an encrypted one opens with the password of the environment (or --password-file). */
export async function openRepo(opts: RepoOptions, open: Omit<OpenOptions, 'password'> = {}): Promise<Repository> {
  return Repository.open(openStorage(repoPath(opts)), { ...open, password: environmentPassword });
}

export function output(opts: RepoOptions): Output {
  return new Output(Boolean(opts.json));
}

/** commander argument parsers that reject bad values with a clear message. */
export function wholeNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a whole number >= 0, got ${JSON.stringify(value)}`);
  return n;
}

export function percent(value: string): number {
  const n = Number(value.replace(/%$/, ''));
  if (!Number.isFinite(n) || n <= 0 || n > 100) throw new InvalidArgumentError(`expected a percentage in (0, 100], got ${JSON.stringify(value)}`);
  return n;
}

/** A duration such as 24h, 90m, 7d, 30s or 0 (none), in milliseconds. */
export function duration(value: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(value.trim());
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  if (!m || (m[2] === undefined && m[1] !== '0')) throw new InvalidArgumentError(`expected a duration such as 24h, 90m, 7d or 0, got ${JSON.stringify(value)}`);
  return Number(m[1]) * (m[2] ? unit[m[2] as keyof typeof unit] : 0);
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
