import { ContextConsumer } from '@lit/context';
import { css, LitElement } from 'lit';
import type { DataProtectClient, Session } from '../../openapi/client.js';
import { clientContext, localeContext, sessionContext } from './context.js';
import { MESSAGES, translate, type Locale, type MessageKey } from './i18n.js';

/** Problem documents arrive as DataProtectApiError; components only need their shape. */
export interface ProblemLike {
  status: number;
  title: string;
  detail?: string;
  /** For 501: the missing capability (backup-runner, generations, restore, global-restore). */
  capability?: string;
  errors?: { field: string; message: string }[];
}

export function problemOf(err: unknown): ProblemLike | null {
  const p = (err as { problem?: ProblemLike } | null)?.problem;
  return p && typeof p.status === 'number' ? p : null;
}

/** The client and the language from the host's context, and the translation helper. */
export class DpElement extends LitElement {
  private readonly clientConsumer = new ContextConsumer(this, { context: clientContext, subscribe: true });
  private readonly localeConsumer = new ContextConsumer(this, { context: localeContext, subscribe: true });
  private readonly sessionConsumer = new ContextConsumer(this, { context: sessionContext, subscribe: true });

  protected get client(): DataProtectClient | undefined {
    return this.clientConsumer.value;
  }

  protected get session(): Session | undefined {
    return this.sessionConsumer.value;
  }

  /**
   * Whether to offer an action that needs `role`. Without a session in context the action is offered and the
   * server's 403 explains; the server decides in every case.
   */
  protected may(role: 'manageDataProtect' | 'manageRestore'): boolean {
    const s = this.session;
    if (!s) return true;
    if (s.globalAdmin || s.roles.includes('manageDataProtect')) return true;
    return role === 'manageRestore' && (s.roles.includes('manageRestore') || s.restoreOrgUnits.length > 0);
  }

  protected get locale(): Locale {
    return this.localeConsumer.value ?? 'en';
  }

  /** A problem's explanation in the console's language when we know it, else the server's words. */
  protected problemText(p: ProblemLike): string {
    const key = `unavailable.${p.capability}` as MessageKey;
    return p.status === 501 && p.capability && key in MESSAGES.en ? this.t(key) : (p.detail ?? p.title);
  }

  private dialogReturnFocus: HTMLElement | null = null;

  /**
   * Opens the component's confirmation <dialog> once it is rendered, with the focus on its safe
   * (secondary) button; closing it gives the focus back to the control that opened it.
   */
  protected openDialog(e: Event): void {
    this.dialogReturnFocus = e.currentTarget as HTMLElement;
    void this.updateComplete.then(() => {
      const dialog = this.renderRoot.querySelector('dialog');
      if (dialog && !dialog.open) dialog.showModal();
      this.renderRoot.querySelector<HTMLButtonElement>('dialog button.secondary')?.focus();
    });
  }

  protected closeOpenDialog(): void {
    this.renderRoot.querySelector('dialog')?.close();
    this.dialogReturnFocus?.focus();
  }

  protected t(key: MessageKey, params?: Record<string, string | number>): string {
    return translate(this.locale, key, params);
  }

  static readonly baseStyles = css`
    :host {
      display: block;
      font: 14px/1.45 system-ui, sans-serif;
      color: #1f2933;
      box-sizing: border-box;
      max-width: 100%;
    }
    *,
    *::before,
    *::after {
      box-sizing: inherit;
    }
    h2 {
      font-size: 18px;
      margin: 0 0 12px;
    }
    button {
      font: inherit;
      padding: 6px 14px;
      border-radius: 4px;
      border: 1px solid #1d6fa5;
      background: #1d6fa5;
      color: #fff;
      cursor: pointer;
    }
    button.secondary {
      background: #fff;
      color: #1d6fa5;
    }
    button.danger {
      background: #b42318;
      border-color: #b42318;
    }
    button:disabled {
      opacity: 0.55;
      cursor: not-allowed;
    }
    button:focus-visible,
    input:focus-visible,
    a:focus-visible {
      outline: 3px solid #f5a623;
      outline-offset: 2px;
    }
    .alert {
      border: 1px solid #d92d20;
      background: #fef3f2;
      color: #7a271a;
      padding: 10px 12px;
      border-radius: 4px;
      margin: 8px 0;
    }
    .alert.unavailable {
      border-color: #b54708;
      background: #fffaeb;
      color: #7a2e0e;
    }
    .alert strong {
      display: block;
    }
    .note {
      color: #52606d;
      font-size: 13px;
    }
  `;
}
