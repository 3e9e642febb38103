import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { HostAuthenticator } from '../../server/dataprotect/auth.js';
import type { Principal, Role } from '../../server/dataprotect/principal.js';

// The standalone console's accounts: the installation's administrator (admin0@global.virt, a global admin as in
// BlueMind), signing in with a password for a session key, or calling with the long-lived API key. Both are sent
// as X-BM-ApiKey, like BlueMind's own sessions and API keys.

const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

export interface AdminAccount {
  login: string;
  password: string;
  apiKey: string;
}

/**
 * Another account (tests, demonstrations): roles held in its domain (`domainUid`, else the login's domain), as a
 * BlueMind domain administrator; in global.virt they reach every domain. manageRestore may be limited to OUs.
 */
export interface ExtraAccount {
  login: string;
  password: string;
  roles: Role[];
  restoreOrgUnits?: string[];
  domainUid?: string;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class StandaloneAuth implements HostAuthenticator {
  private readonly sessions = new Map<string, { principal: Principal; expires: number }>();
  private readonly admin: Principal;

  private readonly extras: { account: ExtraAccount; principal: Principal }[];

  constructor(
    private readonly account: AdminAccount,
    extra: ExtraAccount[] = [],
  ) {
    this.extras = extra.map((a) => ({
      account: a,
      principal: {
        uid: a.login.replace(/[^A-Za-z0-9]/g, '_'),
        login: a.login,
        displayName: a.login.split('@')[0],
        email: a.login,
        domainUid: a.domainUid ?? a.login.split('@')[1] ?? 'global.virt',
        globalAdmin: false,
        roles: a.roles,
        restoreOrgUnits: a.restoreOrgUnits ?? [],
      },
    }));
    this.admin = {
      uid: 'admin0_global.virt',
      login: account.login,
      displayName: 'admin0',
      email: null,
      domainUid: 'global.virt',
      globalAdmin: true,
      roles: ['manageDataProtect', 'manageRestore'],
      restoreOrgUnits: [],
    };
  }

  async authenticate(apiKey: string): Promise<Principal | null> {
    if (same(apiKey, this.account.apiKey)) return this.admin;
    const s = this.sessions.get(apiKey);
    if (!s) return null;
    if (s.expires < Date.now()) {
      this.sessions.delete(apiKey);
      return null;
    }
    s.expires = Date.now() + SESSION_TTL_MS;
    return s.principal;
  }

  /** A new session key for the right login and password, else null. */
  signIn(login: string, password: string): string | null {
    const wanted = login.trim().toLowerCase();
    let principal: Principal | null = null;
    if (same(wanted, this.account.login) && same(password, this.account.password)) principal = this.admin;
    for (const e of this.extras) if (same(wanted, e.account.login) && same(password, e.account.password)) principal = e.principal;
    if (!principal) return null;
    const key = randomBytes(24).toString('base64url');
    this.sessions.set(key, { principal, expires: Date.now() + SESSION_TTL_MS });
    return key;
  }

  signOut(key: string): void {
    this.sessions.delete(key);
  }
}
