import type { InjectionToken } from 'tsyringe';
import type { Principal } from './principal.js';

/**
 * The host's answer to "who holds this API key": BlueMind resolves X-BM-ApiKey (a session id or an API key) to a
 * user and their roles. The reference host and the standalone console implement it.
 */
export interface HostAuthenticator {
  authenticate(apiKey: string): Promise<Principal | null>;
}

export const HOST_AUTHENTICATOR: InjectionToken<HostAuthenticator> = Symbol('dp.HostAuthenticator');
