import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { redactUrl as redact } from '../../server/pg/redact.js';
import type { AdminAccount } from './auth.js';
import { startConsole } from './console.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-db.js';
import { portOrFree } from './ports.js';
import { referenceHostServices } from './reference-host.js';
import { stopDovecot } from '../../server/host/reference/dovecot.js';

// `npm start`: the composition root of the reference console.

function reachable(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** DP_ADMIN_KEY / DP_ADMIN_PASSWORD when set, else generated once and kept in var/console-credentials.json. */
function account(varDir: string): AdminAccount {
  const file = path.join(varDir, 'console-credentials.json');
  let saved: Partial<AdminAccount> = {};
  if (existsSync(file)) saved = JSON.parse(readFileSync(file, 'utf8')) as Partial<AdminAccount>;
  const a: AdminAccount = {
    login: 'admin0@global.virt',
    password: process.env.DP_ADMIN_PASSWORD || saved.password || randomBytes(9).toString('base64url'),
    apiKey: process.env.DP_ADMIN_KEY || saved.apiKey || randomBytes(24).toString('base64url'),
  };
  writeFileSync(file, JSON.stringify({ password: saved.password ?? a.password, apiKey: saved.apiKey ?? a.apiKey }, null, 2));
  chmodSync(file, 0o600);
  return a;
}

async function main(): Promise<void> {
  const varDir = path.resolve(process.env.DP_VAR_DIR ?? 'var');
  mkdirSync(varDir, { recursive: true });
  // PostgreSQL: DATABASE_URL, else 127.0.0.1:5432 if reachable, else an embedded PostgreSQL 15 under var/.
  let databaseUrl = process.env.DATABASE_URL;
  let embedded: EmbeddedDatabase | null = null;
  if (!databaseUrl) {
    if (process.env.DP_EMBEDDED_PG !== '1' && (await reachable('127.0.0.1', 5432))) {
      databaseUrl = 'postgres://postgres@127.0.0.1:5432/bm_dataprotect';
    } else {
      const pgPort = await portFor('DP_EMBEDDED_PG_PORT', 54329, '127.0.0.1', 'embedded PostgreSQL');
      const why = process.env.DP_EMBEDDED_PG === '1' ? 'DP_EMBEDDED_PG=1' : 'no PostgreSQL on 127.0.0.1:5432';
      console.log(`${why}: starting an embedded PostgreSQL 15 on port ${pgPort}`);
      embedded = await startEmbeddedPostgres(varDir, pgPort, (m) => console.log(m));
      console.log(`  embedded PostgreSQL data in ${embedded.dataDir}`);
      databaseUrl = embedded.url;
    }
  }
  const host = process.env.HOST ?? '0.0.0.0';
  const port = await portFor('PORT', 8080, host, 'console');
  const acct = account(varDir);
  let running: Awaited<ReturnType<typeof startConsole>>;
  let reference: Awaited<ReturnType<typeof referenceHostServices>> | undefined;
  try {
    // The installation "Backup now" backs up: the reference host, seeded on first start under var/host.
    reference = await referenceHostServices({ databaseUrl, hostRoot: path.join(varDir, 'host'), log: (l) => console.log(l) });
    running = await startConsole({
      services: reference.services,
      port,
      host,
      databaseUrl,
      varDir,
      account: acct,
      log: { env: process.env },
    });
  } catch (err) {
    if (reference) await stopDovecot(reference.host.layout).catch(() => {});
    await embedded?.stop().catch(() => {});
    throw err;
  }
  const shown = new URL(running.url);
  if (shown.hostname === '0.0.0.0') shown.hostname = 'localhost';
  console.log(`bm-dataprotect console: ${shown.toString()}`);
  console.log(`  sign in as ${acct.login} with password ${acct.password}`);
  console.log(`  API: ${shown.origin}/api/dataprotect with header X-BM-ApiKey: ${acct.apiKey}`);
  console.log(`  database ${redact(databaseUrl)}; repository ${path.join(varDir, 'repository')}; scheduler ${running.plugin.scheduler}`);
  console.log(`  backs up the reference host in ${path.join(varDir, 'host')} (database <plugin database>_host unless DP_HOST_DATABASE_URL is set)`);
  // Ends by the signal's own default action: process.exit() would wait for the I/O threads, and one blocked on a
  // repository that never answers (an NFS server gone) would keep the process alive until kill -9.
  const die = (signal: NodeJS.Signals) => {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  };
  const stop = async (signal: NodeJS.Signals) => {
    // Stops within 10 s whatever hangs: the running task is recorded INTERRUPTED by the task registry's close,
    // which does not wait longer than its own grace.
    setTimeout(() => {
      console.error('bm-dataprotect console: not stopped after 9 s, exiting anyway');
      die(signal);
    }, 9_000).unref();
    console.log('bm-dataprotect console: stopping');
    await running.close().catch(() => {});
    if (reference) await stopDovecot(reference.host.layout).catch(() => {});
    await embedded?.stop().catch(() => {});
    console.log('bm-dataprotect console: stopped');
    die(signal);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

/** A port from the environment; its default is replaced by a free one when taken, a port given explicitly is not. */
async function portFor(name: string, fallback: number, host: string, what: string): Promise<number> {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return portOrFree(fallback, host, what, (m) => console.log(m));
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name}=${raw} is not a port number`);
  return port;
}

main().catch((err) => {
  console.error(`bm-dataprotect console failed to start: ${(err as Error).message}`);
  process.exit(1);
});
