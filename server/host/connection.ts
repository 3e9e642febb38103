// Which database is BlueMind's: DATABASE_URL, or the directory database `bj` on the local PostgreSQL.

import { parseDatabaseUrl, type ConnectionSettings } from '../pg/settings.js';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/bj';

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): ConnectionSettings {
  return parseDatabaseUrl(env.DATABASE_URL || DEFAULT_DATABASE_URL, 'bj');
}
