import { createContext } from '@lit/context';
import type { DataProtectClient } from '../../openapi/client.js';
import type { Locale } from './i18n.js';

// Services the host provides: the API client and the console's language. Components never create them.

export const clientContext = createContext<DataProtectClient | undefined>(Symbol.for('bm-dataprotect.client'));
export const localeContext = createContext<Locale>(Symbol.for('bm-dataprotect.locale'));
