import { html, css, nothing } from 'lit';
import type { Schemas, Task, TaskLogEntry } from '../../openapi/client.js';
import { DpElement, problemOf } from './base.js';
import { formatBytes, translatePhrase, translatePlural, type PluralKey } from './i18n.js';

/** Units the console counts in words, with plural forms (`task.count.UNIT`); others are shown as the server says them. */
const COUNTED = new Set(['messages', 'parts', 'items', 'generations']);

/** The task's title in the console's language (the English title for a task recorded without its phrase). */
export function taskTitleText(locale: Parameters<typeof translatePhrase>[0], t: Task): string {
  return translatePhrase(locale, t.titlePhrase, t.title);
}

export interface DpTaskProgressEventMap {
  /** The task ended, whatever its status (detail: the final task). */
  'dp-task-end': CustomEvent<Task>;
}

/**
 * Progress bar and live log of one task (server-sent events), with a Cancel button while it runs.
 * Attribute `task-id`. Fires `dp-task-end` (detail: the final task) when the task ends.
 */
export class DpTaskProgress extends DpElement<DpTaskProgressEventMap> {
  static override properties = {
    taskId: { type: String, attribute: 'task-id' },
    task: { state: true },
    entries: { state: true },
    error: { state: true },
    cancelling: { state: true },
    files: { state: true },
  };

  declare taskId: string | null;
  declare task: Task | null;
  declare entries: TaskLogEntry[];
  declare error: string | null;
  declare cancelling: boolean;
  declare files: Schemas['TaskFile'][];
  private abort: AbortController | null = null;
  private following: string | null = null;

  constructor() {
    super();
    this.taskId = null;
    this.task = null;
    this.entries = [];
    this.error = null;
    this.cancelling = false;
    this.files = [];
  }

  static override styles = [
    DpElement.baseStyles,
    css`
      .bar {
        height: 12px;
        background: var(--_dp-color-divider);
        border-radius: var(--_dp-radius-large);
        overflow: hidden;
        margin: 6px 0;
      }
      .bar > div {
        height: 100%;
        background: var(--_dp-color-primary);
        transition: width 0.2s;
      }
      /* A failed or interrupted task's bar turns red, a finished one green: the outcome at a glance. */
      .bar[data-bar-status='FAILED'] > div,
      .bar[data-bar-status='INTERRUPTED'] > div {
        background: var(--_dp-color-danger);
      }
      .bar[data-bar-status='SUCCEEDED'] > div {
        background: var(--_dp-color-success);
      }
      .bar[data-bar-status='CANCELLED'] > div {
        background: var(--_dp-color-warning);
      }
      .announce {
        position: absolute;
        width: 1px;
        height: 1px;
        overflow: hidden;
        clip: rect(0 0 0 0);
        white-space: nowrap;
      }
      .head {
        display: flex;
        gap: var(--_dp-space-3);
        align-items: center;
        justify-content: space-between;
        flex-wrap: wrap;
      }
      ol {
        list-style: none;
        margin: 6px 0 0;
        padding: 6px var(--_dp-space-2);
        max-height: 220px;
        overflow: auto;
        background: var(--_dp-color-surface-muted);
        border-radius: var(--_dp-radius);
        font: 12px/1.5 ui-monospace, monospace;
        overflow-wrap: anywhere;
      }
      li.warn {
        color: var(--_dp-color-warning);
      }
      li.error {
        color: var(--_dp-color-danger);
        font-weight: 600;
      }
      ul.files {
        list-style: none;
        padding: 0;
        display: flex;
        gap: var(--_dp-space-3);
        flex-wrap: wrap;
      }
      .status-SUCCEEDED {
        color: var(--_dp-color-success);
      }
      .status-FAILED,
      .status-INTERRUPTED {
        color: var(--_dp-color-danger);
      }
    `,
  ];

  override updated(): void {
    if (this.taskId !== this.following && this.client) void this.follow();
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.following = null;
    this.requestUpdate();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.abort?.abort();
  }

  private async follow(): Promise<void> {
    this.abort?.abort();
    this.following = this.taskId;
    this.task = null;
    this.entries = [];
    this.files = [];
    this.error = null;
    const id = this.taskId;
    const client = this.client;
    if (!id || !client) return;
    // The panel appears where the action was taken: bring it (and later its result) into view.
    void this.updateComplete.then(() => this.scrollIntoView?.({ block: 'nearest' }));
    const abort = new AbortController();
    this.abort = abort;
    try {
      for await (const e of client.taskEvents(id, abort.signal)) {
        if (e.type === 'log') this.entries = [...this.entries, e.entry];
        else this.task = e.task;
        if (e.type === 'end') {
          this.files = await client.listTaskFiles(e.task.id, abort.signal).catch(() => []);
          this.emit('dp-task-end', e.task);
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) this.error = problemOf(err)?.detail ?? (err as Error).message;
    }
  }

  /** Fetches the file with the API key (a plain link could not send it) and hands it to the browser. */
  private async download(name: string): Promise<void> {
    if (!this.client || !this.taskId) return;
    try {
      const blob = await this.client.downloadTaskFile(this.taskId, name);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      this.error = problemOf(err)?.detail ?? (err as Error).message;
    }
  }

  private async cancel(): Promise<void> {
    if (!this.task || !this.client) return;
    this.cancelling = true;
    try {
      const answer = await this.client.cancelTask(this.task.id);
      // The event stream may already have delivered the end: the cancel's answer (still RUNNING) must not undo it.
      if (this.task?.status === 'RUNNING') this.task = answer;
    } catch (err) {
      this.error = problemOf(err)?.detail ?? (err as Error).message;
    } finally {
      this.cancelling = false;
    }
  }

  /** "3 of 5 messages", with the plural the language asks for; units the console does not know, as they come. */
  private count(p: Task['progress']): string {
    if (p.unit && COUNTED.has(p.unit) && p.total !== null) {
      return translatePlural(this.locale, `task.count.${p.unit}` as PluralKey, p.total, { done: p.done, total: p.total });
    }
    return `${p.done}${p.total !== null ? ` / ${p.total}` : ''} ${p.unit ?? ''}`;
  }

  override render() {
    if (!this.taskId) return html`<p class="note">${this.t('task.noTask')}</p>`;
    const t = this.task;
    const p = t?.progress;
    const ended = !!t && t.status !== 'RUNNING';
    const pct = ended ? 100 : p && p.total ? Math.min(100, Math.round((p.done / p.total) * 100)) : 0;
    return html`
      <div part="head" class="head">
        <strong part="title">${t ? taskTitleText(this.locale, t) : this.t('common.loading')}</strong>
        ${t ? html`<span part="status" class="status status-${t.status}" data-status=${t.status}>${this.t(`task.status.${t.status}`)}</span>` : nothing}
        ${t?.status === 'RUNNING'
          ? html`<button part="cancel-button" class="secondary" @click=${this.cancel} ?disabled=${this.cancelling || t.cancelRequested}>
              ${this.cancelling || t.cancelRequested ? this.t('task.cancelling') : this.t('task.cancel')}
            </button>`
          : nothing}
      </div>
      <span class="announce" role="status" aria-live="polite" aria-atomic="true">${t ? this.t('task.announce', { title: taskTitleText(this.locale, t), status: this.t(`task.status.${t.status}`) }) : ''}</span>
      <div part="bar" class="bar" data-bar-status=${t?.status ?? 'RUNNING'} role="progressbar" aria-label=${this.t('task.progress')} aria-valuemin="0" aria-valuemax="100" aria-valuenow=${pct}>
        <div part="bar-fill" style="width: ${pct}%"></div>
      </div>
      ${p && (p.total !== null || p.done > 0 || p.message || p.bytes != null)
        ? html`<div part="count" class="note">${this.count(p)} ${p.bytes != null ? `· ${formatBytes(this.locale, p.bytes)}` : ''}
            ${p.message ?? ''}</div>`
        : nothing}
      ${t?.error ? html`<div part="alert" class="alert" role="alert" data-error-key=${t.errorPhrase?.key ?? nothing}>${translatePhrase(this.locale, t.errorPhrase, t.error)}</div>` : nothing}
      ${this.error ? html`<div part="alert" class="alert" role="alert">${this.error}</div>` : nothing}
      ${this.files.length
        ? html`<ul part="files" class="files" aria-label=${this.t('task.files')}>
            ${this.files.map(
              (f) => html`<li>
                <button class="secondary" aria-label=${this.t('task.download', { name: f.name })} @click=${() => this.download(f.name)}>
                  ${f.name}
                </button>
                <span class="note">${formatBytes(this.locale, f.size)}</span>
              </li>`,
            )}
          </ul>`
        : nothing}
      <ol part="log" aria-label=${this.t('task.log')} aria-live="polite">
        ${this.entries.map((e) => html`<li class=${e.level}>${new Date(e.time).toLocaleTimeString(this.locale)} ${translatePhrase(this.locale, e.phrase, e.message)}</li>`)}
      </ol>
    `;
  }
}
