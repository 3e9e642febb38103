// Database connection settings: parsed from a URL, handed to `pg` and to pg_dump/pg_restore through the
// environment (never argv, where `ps` shows it), and printable only without the password.

import type { ClientConfig } from 'pg';

/** Default when DATABASE_URL is unset: BlueMind's directory database `bj` on the local PostgreSQL. */
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/bj';

export interface ConnectionSettings {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export function parseDatabaseUrl(url: string): ConnectionSettings {
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
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'bj';
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 5432,
    user: decodeURIComponent(u.username) || 'postgres',
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database,
  };
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): ConnectionSettings {
  return parseDatabaseUrl(env.DATABASE_URL || DEFAULT_DATABASE_URL);
}

export function withDatabase(s: ConnectionSettings, database: string): ConnectionSettings {
  return { ...s, database };
}

export function pgConfig(s: ConnectionSettings): ClientConfig {
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

/** Removes every occurrence of the password (raw and URL-encoded) from a text. */
export function redact(text: string, s: Pick<ConnectionSettings, 'password'>): string {
  if (!s.password) return text;
  let out = text;
  for (const secret of new Set([s.password, encodeURIComponent(s.password)])) {
    if (secret.length > 0) out = out.split(secret).join('***');
  }
  return out;
}

/** Quotes an SQL identifier. */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}
