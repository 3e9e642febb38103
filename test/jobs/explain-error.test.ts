import { createConnection } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PasswordError, RepositoryNotFoundError } from '../../server/engine/index.js';
import { explainError, fromService } from '../../server/jobs/explain-error.js';
import { quoteNonIntegerNumbers } from '../../server/http/json-numbers.js';

// Failures explained with what to do, from real errors (a refused socket, a path under a file), not hand-made codes.

/** A connection to a loopback port nobody listens on (the listener is closed first, so the port is free). */
async function refused(host: string): Promise<Error> {
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, host, () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  return new Promise((resolve) => createConnection({ host, port }).on('error', resolve));
}

describe('explainError', () => {
  it('a refused connection to the mail server asks whether Dovecot runs, with its address', async () => {
    const err = await refused('127.0.0.2');
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    const address = `${(err as unknown as { address: string }).address}:${(err as unknown as { port: number }).port}`;
    const e = explainError(fromService('mail', address, err));
    expect(e).toEqual({
      key: 'error.mail.refused',
      params: { address },
      message: `The mail server (${address}) refused the connection: is Dovecot running?`,
    });
    // Wrapped (cause chain), the explanation still finds it.
    expect(explainError(new Error('restore failed', { cause: fromService('mail', address, err) }))?.key).toBe('error.mail.refused');
  });

  it('PostgreSQL is recognised by its port; an unknown service still says which address refused', async () => {
    const pg = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', address: '127.0.0.1', port: 5432 });
    expect(explainError(pg)?.message).toBe('PostgreSQL (127.0.0.1:5432) refused the connection: is PostgreSQL running?');
    const other = await refused('127.0.0.1');
    expect(explainError(other)?.key).toBe('error.service.refused');
  });

  it('filesystem failures name the path and what to do', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dp-explain-'));
    try {
      writeFileSync(path.join(dir, 'file'), 'x');
      const notDir = await mkdir(path.join(dir, 'file', 'repo')).catch((e: unknown) => e);
      expect(explainError(notDir)).toMatchObject({ key: 'error.path.notFolder', params: { path: path.join(dir, 'file', 'repo') } });
      const eacces = Object.assign(new Error("EACCES: permission denied, open '/srv/dp/x'"), { code: 'EACCES', path: '/srv/dp/x' });
      expect(explainError(eacces)?.message).toMatch(/^Permission denied on \/srv\/dp\/x: .*owner and mode/);
      const full = Object.assign(new Error('ENOSPC'), { code: 'ENOSPC', path: '/srv/dp/data/ab' });
      expect(explainError(full)?.message).toMatch(/^The disk holding \/srv\/dp\/data\/ab is full: free some space/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing repository says where, and what to check', () => {
    const e = explainError(new RepositoryNotFoundError("no repository at /srv/dp (no config file); create one with 'x'"));
    expect(e).toMatchObject({ key: 'error.repository.missing', params: { path: '/srv/dp' } });
    expect(e?.message).toMatch(/is the share mounted\?/);
  });

  it('an encrypted repository without its password, or with a wrong one, says which and what to set', () => {
    const missing = explainError(new PasswordError('repository /srv/dp is encrypted: give its password', 'missing', '/srv/dp'));
    expect(missing).toMatchObject({ key: 'error.repository.passwordMissing', params: { path: '/srv/dp' } });
    expect(missing?.message).toMatch(/set DP_REPOSITORY_PASSWORD_FILE in the environment/);
    expect(explainError(new PasswordError('wrong password for repository /srv/dp', 'wrong', '/srv/dp'))).toMatchObject({ key: 'error.repository.passwordWrong' });
    // A password file others can read keeps its own words: they say what to run.
    expect(explainError(new PasswordError('password file /x can be read or written by others'))).toBeNull();
  });

  it('anything else keeps its own words (null)', () => {
    expect(explainError(new Error('the generation is damaged'))).toBeNull();
    expect(explainError('a string')).toBeNull();
  });
});

describe('whole numbers in request bodies', () => {
  it('quotes numbers written with an exponent or a fraction, and nothing inside strings', () => {
    expect(quoteNonIntegerNumbers('{"a":1e3,"b":7,"c":-2.5,"d":"1e3 [7.0]","e":[1E+2, 3]}')).toBe('{"a":"1e3","b":7,"c":"-2.5","d":"1e3 [7.0]","e":["1E+2", 3]}');
    expect(quoteNonIntegerNumbers('{"s":"a\\"1.5"}')).toBe('{"s":"a\\"1.5"}');
  });
});
