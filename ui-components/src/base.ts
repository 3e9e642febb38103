import { ContextConsumer } from '@lit/context';
import { css, html, LitElement, type TemplateResult } from 'lit';
import type { DataProtectClient, Session } from '../../openapi/client.js';
import { clientContext, localeContext, sessionContext } from './context.js';
import { MESSAGES, translate, type Locale, type MessageKey } from './i18n.js';
import { themeStyles } from './theme.js';

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

/** The detail type of each event of an event map (`{ 'dp-x': CustomEvent<D> }` → D). */
export type EventDetail<Events, K extends keyof Events> = Events[K] extends CustomEvent<infer D> ? D : never;

/**
 * The client and the language from the host's context, and the translation helper. `Events` is the component's
 * event map: `emit` only dispatches the events it names, with their detail type.
 */
export class DpElement<Events extends object = object> extends LitElement {
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

  /** Dispatches one of the component's documented events; it bubbles and crosses shadow roots. */
  protected emit<K extends keyof Events & string>(type: K, detail: EventDetail<Events, K>): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  /** A problem document as an alert; a 501 says what this build lacks. */
  protected problemBox(p: ProblemLike): TemplateResult {
    const unavailable = p.status === 501;
    return html`<div part="alert" class="alert ${unavailable ? 'unavailable' : ''}" role="alert" data-problem-status=${p.status}>
      <strong>${unavailable ? this.t('common.unavailable') : p.title}</strong>${this.problemText(p)}
    </div>`;
  }

  /** A failed request as an alert: the problem document when there is one, else the error's message. */
  protected errorBox(err: unknown): TemplateResult {
    const p = problemOf(err);
    return p ? this.problemBox(p) : html`<div part="alert" class="alert" role="alert"><strong>${this.t('common.error')}</strong>${(err as Error).message}</div>`;
  }

  protected t(key: MessageKey, params?: Record<string, string | number>): string {
    return translate(this.locale, key, params);
  }

  static readonly baseStyles = [
    themeStyles,
    css`
      :host {
        display: block;
        font: var(--_dp-font);
        color: var(--_dp-color-text);
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
        margin: 0 0 var(--_dp-space-3);
      }
      button {
        font: inherit;
        padding: 6px 14px;
        border-radius: var(--_dp-radius);
        border: 1px solid var(--_dp-color-primary);
        background: var(--_dp-color-primary);
        color: var(--_dp-color-on-primary);
        cursor: pointer;
      }
      button.secondary {
        background: var(--_dp-color-surface);
        color: var(--_dp-color-primary);
      }
      button.danger {
        background: var(--_dp-color-danger);
        border-color: var(--_dp-color-danger);
      }
      button:disabled {
        opacity: 0.55;
        cursor: not-allowed;
      }
      button:focus-visible,
      input:focus-visible,
      a:focus-visible {
        outline: 3px solid var(--_dp-color-focus);
        outline-offset: 2px;
      }
      .alert {
        border: 1px solid var(--_dp-color-alert-border);
        background: var(--_dp-color-alert-background);
        color: var(--_dp-color-alert-text);
        padding: 10px var(--_dp-space-3);
        border-radius: var(--_dp-radius);
        margin: var(--_dp-space-2) 0;
      }
      .alert.unavailable {
        border-color: var(--_dp-color-notice-border);
        background: var(--_dp-color-notice-background);
        color: var(--_dp-color-notice-text);
      }
      .alert strong {
        display: block;
      }
      .note {
        color: var(--_dp-color-muted);
        font-size: 13px;
      }
    `,
  ];

  /** Tables, pagers and badges of the browsing components (restore browser, mailbox browser). */
  static readonly listStyles = css`
    table {
      border-collapse: collapse;
      width: 100%;
    }
    th,
    td {
      text-align: left;
      padding: 6px var(--_dp-space-2);
      border-bottom: 1px solid var(--_dp-color-divider);
      vertical-align: top;
    }
    th {
      background: var(--_dp-color-surface-muted);
    }
    .pager {
      display: flex;
      gap: var(--_dp-space-2);
      align-items: center;
      margin: var(--_dp-space-2) 0;
    }
    .actions {
      display: flex;
      gap: var(--_dp-space-2);
      flex-wrap: wrap;
      margin: var(--_dp-space-2) 0;
    }
    label {
      display: flex;
      flex-direction: column;
      gap: var(--_dp-space-1);
      font-weight: 600;
    }
    select,
    input[type='search'] {
      font: inherit;
      padding: 5px var(--_dp-space-2);
      border: 1px solid var(--_dp-color-control-border);
      border-radius: var(--_dp-radius);
      min-width: 200px;
    }
  `;
}
