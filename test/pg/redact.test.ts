import { describe as suite, expect, it } from 'vitest';
import { quoteIdent } from '../../server/pg/ident.js';
import { redactPassword, redactUrl } from '../../server/pg/redact.js';
import { clientConfig, describe, parseDatabaseUrl, pgToolEnv, siblingDatabaseUrl } from '../../server/pg/settings.js';

// A password with every character that has a meaning in a URL's authority.
const PASSWORD = 's3cr@t:p/w?#%';
const URL_WITH_PASSWORD = `postgres://backup:${encodeURIComponent(PASSWORD)}@db.example:6432/bj?sslmode=require`;

suite('redaction', () => {
  it('hides a password holding @ and : in a URL, keeping the rest readable', () => {
    const shown = redactUrl(URL_WITH_PASSWORD);
    expect(shown).toBe('postgres://backup:***@db.example:6432/bj?sslmode=require');
    expect(shown).not.toContain('s3cr');
  });

  it('hides a raw @ and : in the password the way the URL parser splits it (at the last @)', () => {
    expect(redactUrl('postgres://backup:p@ss:word@db.example/bj')).toBe('postgres://backup:***@db.example/bj');
  });

  it('does not echo a URL it cannot parse', () => {
    expect(redactUrl('postgres://backup:secret@[broken/bj')).toBe('<invalid url>');
  });

  it('leaves a URL without a password as it is', () => {
    expect(redactUrl('postgres://postgres@127.0.0.1:5432/bj')).toBe('postgres://postgres@127.0.0.1:5432/bj');
  });

  it('removes a password from a message, raw and URL-encoded', () => {
    const message = `FATAL: password authentication failed (tried ${PASSWORD} and ${encodeURIComponent(PASSWORD)})`;
    const shown = redactPassword(message, { password: PASSWORD });
    expect(shown).toBe('FATAL: password authentication failed (tried *** and ***)');
    expect(redactPassword(message, {})).toBe(message);
  });
});

suite('identifier quoting', () => {
  it('wraps a plain name in double quotes', () => {
    expect(quoteIdent('t_domain')).toBe('"t_domain"');
  });

  it('doubles a quote inside the name, so the name cannot end the identifier', () => {
    expect(quoteIdent('a"; DROP DATABASE bj; --')).toBe('"a""; DROP DATABASE bj; --"');
    expect(quoteIdent('"')).toBe('""""');
  });
});

suite('connection settings', () => {
  it('parses a URL with an encoded password and keeps it out of describe() and argv', () => {
    const s = parseDatabaseUrl(URL_WITH_PASSWORD);
    expect(s).toEqual({ host: 'db.example', port: 6432, user: 'backup', password: PASSWORD, database: 'bj' });
    expect(describe(s)).toBe('backup@db.example:6432/bj');
    const env = pgToolEnv(s, { PATH: '/bin', DATABASE_URL: URL_WITH_PASSWORD });
    expect(env).toMatchObject({ PGHOST: 'db.example', PGPORT: '6432', PGUSER: 'backup', PGDATABASE: 'bj', PGPASSWORD: PASSWORD });
    expect(env.DATABASE_URL).toBeUndefined();
  });

  it('needs a database in the URL unless a default is given', () => {
    expect(() => parseDatabaseUrl('postgres://postgres@127.0.0.1:5432')).toThrow(/names no database/);
    expect(parseDatabaseUrl('postgres://postgres@127.0.0.1:5432', 'bj').database).toBe('bj');
  });

  it('refuses a URL that is not postgres:// without echoing it', () => {
    expect(() => parseDatabaseUrl('mysql://root:hunter2@db/x')).toThrow('DATABASE_URL must start with postgres:// (got mysql://)');
    expect(() => parseDatabaseUrl('not a url hunter2')).toThrow(/^DATABASE_URL is not a valid postgres:\/\/ URL$/);
  });

  it('derives a sibling database URL that keeps credentials and parameters', () => {
    const sibling = siblingDatabaseUrl(URL_WITH_PASSWORD, 'postgres');
    expect(parseDatabaseUrl(sibling)).toMatchObject({ user: 'backup', password: PASSWORD, database: 'postgres' });
    expect(sibling).toContain('?sslmode=require');
    expect(clientConfig(URL_WITH_PASSWORD, 'postgres')).toEqual({ connectionString: sibling });
    expect(clientConfig(parseDatabaseUrl(URL_WITH_PASSWORD), 'template1')).toMatchObject({ database: 'template1', password: PASSWORD });
  });
});
