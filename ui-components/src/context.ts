import { createContext } from '@lit/context';
import type { DataProtectClient, Session } from '../../openapi/client.js';
import type { Locale } from './i18n.js';

// Services the host provides: the API client and the console's language. Components never create them.

export const clientContext = createContext<DataProtectClient | undefined>(Symbol.for('bm-dataprotect.client'));
export const localeContext = createContext<Locale>(Symbol.for('bm-dataprotect.locale'));
/** Who is signed in (roles decide which actions are offered; the server decides what is allowed). */
export const sessionContext = createContext<Session | undefined>(Symbol.for('bm-dataprotect.session'));
