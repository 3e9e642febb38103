import { html, nothing, render } from 'lit';
import { registerUi, type ConsoleHost, type UiRegistration } from '../../ui/index.js';
import type { PageRegistration } from '../../ui/registrations.js';
import type { Session } from '../../../openapi/client.js';

// The reference console shell, in BlueMind's spirit: a top bar, a side navigation with Backup and Restore and its
// sub-pages, a sign-in. Our pages come in through the plugin's UI entry exactly as a host would load them.

type Locale = 'en' | 'fr';

const TEXT = {
  en: {
    console: 'Admin console',
    signIn: 'Sign in',
    login: 'Login',
    password: 'Password',
    signingIn: 'Signing in…',
    wrong: 'Wrong login or password.',
    signOut: 'Sign out',
    language: 'Language',
    skip: 'Skip to content',
    nav: 'Console navigation',
    noAccess: 'You have no access to this page.',
    choose: 'Choose a page in the navigation.',
  },
  fr: {
    console: "Console d'administration",
    signIn: 'Se connecter',
    login: 'Identifiant',
    password: 'Mot de passe',
    signingIn: 'Connexion…',
    wrong: 'Identifiant ou mot de passe incorrect.',
    signOut: 'Se déconnecter',
    language: 'Langue',
    skip: 'Aller au contenu',
    nav: 'Navigation de la console',
    noAccess: "Vous n'avez pas accès à cette page.",
    choose: 'Choisissez une page dans la navigation.',
  },
} as const;

const app = document.getElementById('app')!;
const state = {
  locale: (localStorage.getItem('dp.locale') as Locale | null) ?? (navigator.language.startsWith('fr') ? 'fr' : 'en'),
  sessionKey: sessionStorage.getItem('dp.session'),
  session: null as Session | null,
  section: null as { id: string; label: { en: string; fr: string } } | null,
  pages: [] as PageRegistration[],
  error: null as string | null,
  busy: false,
};
let ui: UiRegistration | null = null;

const host: ConsoleHost = {
  root: app,
  apiBase: '/api/dataprotect',
  apiKey: () => state.sessionKey,
  locale: state.locale,
  registerSection: (s) => (state.section = s),
  registerPage: (p) => state.pages.push(p),
  // The reference console has no separate setup wizard: its step is shown as a page, for administrators.
  registerWizardStep: (w) =>
    state.pages.push({ ...w, group: { en: 'Setup wizard', fr: "Assistant d'installation" }, roles: ['manageDataProtect'] }),
};

function t(key: keyof (typeof TEXT)['en']): string {
  return TEXT[state.locale][key];
}

function currentSlot(): string {
  return location.hash.replace(/^#\/?/, '');
}

function allowed(p: PageRegistration): boolean {
  const s = state.session;
  if (!s) return false;
  return s.globalAdmin || p.roles.some((r) => s.roles.includes(r) || (r === 'manageRestore' && s.restoreOrgUnits.length > 0));
}

function setLocale(l: Locale): void {
  state.locale = l;
  localStorage.setItem('dp.locale', l);
  document.documentElement.lang = l;
  ui?.setLocale(l);
  draw();
}

async function signIn(e: Event): Promise<void> {
  e.preventDefault();
  const form = e.target as HTMLFormElement;
  const data = new FormData(form);
  state.busy = true;
  state.error = null;
  draw();
  try {
    const res = await fetch('/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: data.get('login'), password: data.get('password') }),
    });
    if (!res.ok) throw new Error(t('wrong'));
    state.sessionKey = ((await res.json()) as { sessionKey: string }).sessionKey;
    sessionStorage.setItem('dp.session', state.sessionKey);
    await loadSession();
  } catch (err) {
    state.error = (err as Error).message;
  } finally {
    state.busy = false;
    draw();
  }
}

async function signOut(): Promise<void> {
  if (state.sessionKey) await fetch('/auth/logout', { method: 'POST', headers: { 'X-BM-ApiKey': state.sessionKey } }).catch(() => {});
  state.sessionKey = null;
  state.session = null;
  sessionStorage.removeItem('dp.session');
  await ui?.refreshSession();
  draw();
}

async function loadSession(): Promise<void> {
  if (!state.sessionKey || !ui) return;
  state.session = await ui.refreshSession();
  if (!state.session) {
    state.sessionKey = null;
    sessionStorage.removeItem('dp.session');
  }
  if (state.session && !currentSlot()) {
    const first = state.pages.find(allowed);
    if (first) location.hash = `#/${first.slot}`;
  }
}

function languagePicker() {
  return html`<label
    >${t('language')}
    <select @change=${(e: Event) => setLocale((e.target as HTMLSelectElement).value as Locale)} .value=${state.locale}>
      <option value="en" ?selected=${state.locale === 'en'}>English</option>
      <option value="fr" ?selected=${state.locale === 'fr'}>Français</option>
    </select></label
  >`;
}

function signInView() {
  return html`<main class="signin" id="content">
    <h1>BlueMind — ${t('console')}</h1>
    <form @submit=${signIn}>
      <label for="login">${t('login')}</label>
      <input id="login" name="login" autocomplete="username" required value="admin0@global.virt" />
      <label for="password">${t('password')}</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required />
      <button type="submit" ?disabled=${state.busy}>${state.busy ? t('signingIn') : t('signIn')}</button>
      ${state.error ? html`<div class="alert" role="alert">${state.error}</div>` : nothing}
    </form>
    <div class="lang">${languagePicker()}</div>
  </main>`;
}

function pageElement(p: PageRegistration) {
  // One element per page, created once, so that a page keeps its state while the user looks elsewhere.
  const el = (pageElements[p.tag] ??= document.createElement(p.tag));
  return el;
}
const pageElements: Record<string, HTMLElement> = {};

function consoleView() {
  const s = state.session!;
  const slot = currentSlot();
  const page = state.pages.find((p) => p.slot === slot);
  const groups = [...new Set(state.pages.filter(allowed).map((p) => p.group[state.locale]))];
  return html`<a class="skip" href="#content" @click=${(e: Event) => (e.preventDefault(), document.getElementById('content')?.focus())}
      >${t('skip')}</a
    >
    <header class="top">
      <span class="brand">BlueMind</span><span>${t('console')}</span>
      <span class="spacer"></span>
      ${languagePicker()}
      <span data-user>${s.displayName} (${s.login})</span>
      <button @click=${signOut}>${t('signOut')}</button>
    </header>
    <div class="layout">
      <nav class="side" aria-label=${t('nav')}>
        <h2>${state.section?.label[state.locale] ?? ''}</h2>
        ${groups.map(
          (g) => html`<h3>${g}</h3>
            <ul>
              ${state.pages
                .filter((p) => allowed(p) && p.group[state.locale] === g)
                .map(
                  (p) => html`<li>
                    <a href="#/${p.slot}" aria-current=${p.slot === slot ? 'page' : 'false'}>${p.label[state.locale]}</a>
                  </li>`,
                )}
            </ul>`,
        )}
      </nav>
      <main id="content" tabindex="-1">
        <div class="card">
          ${page ? (allowed(page) ? pageElement(page) : html`<p role="alert">${t('noAccess')}</p>`) : html`<p>${t('choose')}</p>`}
        </div>
      </main>
    </div>`;
}

function draw(): void {
  render(state.session ? consoleView() : signInView(), app);
}

window.addEventListener('hashchange', draw);
// The navigator's "Browse and restore": the restore page, opened on that generation.
document.addEventListener('dp-browse-generation', (e) => {
  const restore = state.pages.find((p) => p.tag === 'dp-restore-browser');
  if (!restore) return;
  const el = pageElement(restore) as HTMLElement & { generationId: string | null };
  el.generationId = (e as CustomEvent<{ generationId: string }>).detail.generationId;
  location.hash = `#/${restore.slot}`;
});

ui = registerUi(host);
document.documentElement.lang = state.locale;
void loadSession().then(draw);
draw();
