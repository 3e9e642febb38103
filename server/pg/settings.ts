// Where a PostgreSQL database is: parsed from a postgres:// URL, handed to `pg` and to pg_dump/pg_restore through
// the environment (never argv, where `ps` shows it), and printable only without the password.

import type { ClientConfig } from 'pg';

export interface ConnectionSettings {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

/** A database named either way: a postgres:// URL (kept whole, with its query parameters) or parsed settings. */
export type DatabaseTarget = string | ConnectionSettings;

/** Parses a postgres:// URL; without a database in its path, `defaultDatabase` or an error. */
export function parseDatabaseUrl(url: string, defaultDatabase?: string): ConnectionSettings {
  const u = parseUrl(url);
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || defaultDatabase;
  if (database === undefined) throw new Error(`database URL ${describeUrl(u)} names no database`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 5432,
    user: decodeURIComponent(u.username) || 'postgres',
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database,
  };
}

/** The same server and credentials, another database. */
export function withDatabase(s: ConnectionSettings, database: string): ConnectionSettings {
  return { ...s, database };
}

/** The URL of another database on the same server, keeping credentials and query parameters. */
export function siblingDatabaseUrl(url: string, database: string): string {
  const u = parseUrl(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

/** The postgres:// URL of settings, password included: for a child process's environment, never for a log. */
export function databaseUrlOf(s: ConnectionSettings): string {
  const u = new URL('postgres://localhost');
  u.hostname = s.host.includes(':') ? `[${s.host}]` : s.host;
  u.port = String(s.port);
  u.username = encodeURIComponent(s.user);
  if (s.password) u.password = encodeURIComponent(s.password);
  u.pathname = '/' + encodeURIComponent(s.database);
  return u.toString();
}

/** The settings of a target; a URL without a database gives `database: ''` (the server's default for the user). */
export function settingsOf(target: DatabaseTarget): ConnectionSettings {
  return typeof target === 'string' ? parseDatabaseUrl(target, '') : target;
}

/** `pg` client configuration for the target, or for another database on its server. */
export function clientConfig(target: DatabaseTarget, database?: string): ClientConfig {
  if (typeof target === 'string') return { connectionString: database === undefined ? target : siblingDatabaseUrl(target, database) };
  const s = database === undefined ? target : withDatabase(target, database);
  return { host: s.host, port: s.port, user: s.user, password: s.password, database: s.database };
}

/** Environment for pg_dump / pg_restore / psql: the password travels here, not on the command line. */
export function pgToolEnv(s: ConnectionSettings, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGDATABASE: s.database };
  delete env.DATABASE_URL;
  delete env.PGPASSWORD;
  if (s.password) env.PGPASSWORD = s.password;
  // Keep tools from prompting on a terminal when a password is missing.
  env.PGCONNECT_TIMEOUT = env.PGCONNECT_TIMEOUT ?? '10';
  return env;
}

/** `user@host:port/db` without the password, for logs and errors. */
export function describe(s: ConnectionSettings): string {
  return `${s.user}@${s.host}:${s.port}/${s.database}`;
}

function parseUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Never echo the URL itself: it may hold a password.
    throw new Error('DATABASE_URL is not a valid postgres:// URL');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new Error(`DATABASE_URL must start with postgres:// (got ${u.protocol}//)`);
  }
  return u;
}

function describeUrl(u: URL): string {
  return `${decodeURIComponent(u.username) || 'postgres'}@${u.hostname || '127.0.0.1'}:${u.port || 5432}`;
}
