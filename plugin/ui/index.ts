import { ContextProvider } from '@lit/context';
import { createClient, type DataProtectClient, type Session } from '../../openapi/client.js';
import { clientContext, localeContext, sessionContext } from '../../ui-components/src/context.js';
import { defineComponents } from '../../ui-components/src/define.js';
import type { Locale } from '../../ui-components/src/i18n.js';
import { PAGES, SECTION, WIZARD_STEPS, type PageRegistration, type WizardStepRegistration } from './registrations.js';

// The UI entry: what a host console calls to get our pages. It defines the components, provides the API client
// and the language through context on the host's root element, and hands each page to the host's slot.

export interface ConsoleHost {
  /** The element under which our pages render (context providers attach here). */
  root: HTMLElement;
  /** Where the API is mounted, e.g. /api/dataprotect. */
  apiBase: string;
  /** The caller's X-BM-ApiKey (session), read at each request. */
  apiKey: () => string | null;
  locale: Locale;
  registerSection(section: typeof SECTION): void;
  registerPage(page: PageRegistration): void;
  /** Hosts with a setup wizard take its global restore step here. */
  registerWizardStep?(step: WizardStepRegistration): void;
}

export interface UiRegistration {
  client: DataProtectClient;
  components: string[];
  pages: PageRegistration[];
  wizardSteps: WizardStepRegistration[];
  setLocale(locale: Locale): void;
  /** Reads who is signed in (after a sign-in or a reload) and provides it; null when the key is not valid. */
  refreshSession(): Promise<Session | null>;
}

export function registerUi(host: ConsoleHost): UiRegistration {
  const components = defineComponents();
  const client = createClient({ baseUrl: host.apiBase, apiKey: host.apiKey });
  new ContextProvider(host.root, { context: clientContext, initialValue: client });
  const locale = new ContextProvider(host.root, { context: localeContext, initialValue: host.locale });
  const session = new ContextProvider(host.root, { context: sessionContext, initialValue: undefined });
  const refreshSession = async () => {
    const s = host.apiKey() ? await client.getSession().catch(() => null) : null;
    session.setValue(s ?? undefined);
    return s;
  };
  host.registerSection(SECTION);
  for (const page of PAGES) host.registerPage(page);
  const wizardSteps = host.registerWizardStep ? [...WIZARD_STEPS] : [];
  for (const step of wizardSteps) host.registerWizardStep!(step);
  return { client, components, pages: [...PAGES], wizardSteps, setLocale: (l) => locale.setValue(l), refreshSession };
}
