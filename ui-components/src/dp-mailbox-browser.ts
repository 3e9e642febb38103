import { Task as AsyncTask } from '@lit/task';
import { css, html, nothing } from 'lit';
import type { Schemas } from '../../openapi/client.js';
import { DpElement } from './base.js';
import { formatBytes, formatDate, translatePlural } from './i18n.js';

const MESSAGE_PAGE = 50;

/** What the administrator chose to bring back from a saved mailbox: a whole folder, or messages of one folder. */
export type MailRestoreRequest = (
  | { operation: 'restore.mail.folder'; folder: string }
  | { operation: 'restore.mail.messages'; folder: string; messageIds: string[] }
) & {
  /** How to name the folder to a person (archived mail has a path of its own, not a name). */
  folderLabel?: string;
};

export interface DpMailboxBrowserEventMap {
  /** A folder or chosen messages to restore; the page around confirms and starts the restore. */
  'dp-mail-restore-request': CustomEvent<MailRestoreRequest>;
}

/**
 * One mailbox as a generation saved it: its folders (messages, size), a folder's messages (searched by subject
 * or sender, paged on the server), a choice of messages. Properties `generationId` and `mailboxUid` (attributes
 * `generation-id`, `mailbox-uid`). Fires `dp-mail-restore-request` (detail: MailRestoreRequest); it starts
 * nothing itself. Focusing the element gives the focus back to the control that fired the last request.
 */
export class DpMailboxBrowser extends DpElement<DpMailboxBrowserEventMap> {
  static override properties = {
    generationId: { type: String, attribute: 'generation-id' },
    mailboxUid: { type: String, attribute: 'mailbox-uid' },
    folder: { state: true },
    messageSearch: { state: true },
    messageOffset: { state: true },
    chosen: { state: true },
  };

  declare generationId: string | null;
  declare mailboxUid: string | null;
  declare folder: string | null;
  declare messageSearch: string;
  declare messageOffset: number;
  declare chosen: Set<string>;
  private lastRequester: HTMLElement | null = null;

  constructor() {
    super();
    this.generationId = null;
    this.mailboxUid = null;
    this.folder = null;
    this.messageSearch = '';
    this.messageOffset = 0;
    this.chosen = new Set();
  }

  private readonly folders = new AsyncTask(this, {
    task: async ([client, generationId, mailboxUid], { signal }) => {
      if (!client || !generationId || !mailboxUid) return null;
      return client.listMailFolders(generationId, mailboxUid, signal);
    },
    args: () => [this.client, this.generationId, this.mailboxUid] as const,
  });

  private readonly messages = new AsyncTask(this, {
    task: async ([client, generationId, mailboxUid, folder, search, offset], { signal }) => {
      if (!client || !generationId || !mailboxUid || !folder) return null;
      return client.listMailMessages(generationId, mailboxUid, { folder, search: search || undefined, offset, limit: MESSAGE_PAGE }, signal);
    },
    args: () => [this.client, this.generationId, this.mailboxUid, this.folder, this.messageSearch, this.messageOffset] as const,
  });

  static override styles = [
    DpElement.baseStyles,
    DpElement.listStyles,
    css`
      .mail {
        display: grid;
        grid-template-columns: minmax(160px, 1fr) 3fr;
        gap: var(--_dp-space-3);
      }
      .folders button:not(.secondary) .note {
        color: var(--_dp-color-on-primary);
      }
      .folders button {
        display: block;
        width: 100%;
        text-align: left;
        margin: 2px 0;
      }
    `,
  ];

  /** Another mailbox or generation: its own folders, nothing chosen. */
  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    if (changed.has('generationId') || changed.has('mailboxUid')) {
      this.folder = null;
      this.messageSearch = '';
      this.messageOffset = 0;
      this.chosen = new Set();
    }
  }

  override focus(options?: FocusOptions): void {
    if (this.lastRequester?.isConnected) this.lastRequester.focus(options);
    else super.focus(options);
  }

  private request(detail: MailRestoreRequest, e: Event): void {
    this.lastRequester = e.currentTarget as HTMLElement;
    this.emit('dp-mail-restore-request', detail);
  }

  private openFolder(path: string): void {
    this.folder = path;
    this.messageOffset = 0;
    this.chosen = new Set();
  }

  override render() {
    return this.folders.render({
      pending: () => nothing,
      error: (err) => this.errorBox(err),
      complete: (folders) => (folders ? this.mailbox(folders) : nothing),
    });
  }

  private mailbox(folders: Schemas['MailFolder'][]) {
    const folderButton = (f: Schemas['MailFolder'], label: string) =>
      html`<button part="folder" class=${this.folder === f.path ? '' : 'secondary'} data-folder=${f.path}
        aria-pressed=${this.folder === f.path ? 'true' : 'false'}
        @click=${() => this.openFolder(f.path)}>
        ${label} <span class="note">(${f.messages}, ${formatBytes(this.locale, f.size)})</span>
      </button>`;
    // Archived mail is not an IMAP folder: it has a section of its own, under the folders.
    const archived = folders.filter((f) => f.archived);
    return html`<h4 part="title">${this.t('restore.mail.title')}</h4>
      <div class="mail">
        <nav part="folders" class="folders" aria-label=${this.t('restore.mail.folders')}>
          ${folders.filter((f) => !f.archived).map((f) => folderButton(f, f.path))}
          ${archived.length
            ? html`<h5 part="archive-title" id="archive-title">${this.t('restore.mail.archived')}</h5>
                ${archived.map((f) => folderButton(f, this.t('restore.mail.archived')))}`
            : nothing}
        </nav>
        <div>${this.folder ? this.messageList(this.folder, archived.some((f) => f.path === this.folder)) : html`<p class="note">${this.t('restore.mail.pickFolder')}</p>`}</div>
      </div>`;
  }

  private messageList(folder: string, archived: boolean) {
    // Only archived mail needs a name of its own: a folder's name is its path.
    const label = archived ? { folderLabel: this.t('restore.mail.archived') } : {};
    return html`${archived ? html`<p class="note" part="archive-help">${this.t('restore.mail.archivedHelp')}</p>` : nothing}
      <div part="actions" class="actions">
        <button id="restore-folder" @click=${(ev: Event) => this.request({ operation: 'restore.mail.folder', folder, ...label }, ev)}>
          ${archived ? this.t('restore.mail.restoreArchive') : this.t('restore.mail.restoreFolder', { folder })}
        </button>
        <button id="restore-messages" ?disabled=${this.chosen.size === 0}
          @click=${(ev: Event) => this.request({ operation: 'restore.mail.messages', folder, ...label, messageIds: [...this.chosen] }, ev)}>
          ${translatePlural(this.locale, 'restore.mail.restoreMessages', this.chosen.size)}
        </button>
        <label>
          <span class="note">${this.t('restore.mail.search')}</span>
          <input type="search" @change=${(e: Event) => {
            this.messageSearch = (e.target as HTMLInputElement).value.trim();
            this.messageOffset = 0;
          }} />
        </label>
      </div>
      ${this.messages.render({
        pending: () => html`<p class="note" role="status">${this.t('common.loading')}</p>`,
        error: (err) => this.errorBox(err),
        complete: (page) => (page ? this.messageTable(page) : nothing),
      })}`;
  }

  private messageTable(page: Schemas['MailMessagePage']) {
    return html`<table part="messages">
        <thead>
          <tr>
            <th scope="col"><span class="note">✓</span></th>
            <th scope="col">${this.t('restore.mail.subject')}</th>
            <th scope="col">${this.t('restore.mail.from')}</th>
            <th scope="col">${this.t('restore.mail.date')}</th>
            <th scope="col">${this.t('restore.mail.size')}</th>
          </tr>
        </thead>
        <tbody>
          ${page.items.map(
            (m) => html`<tr data-message=${m.id}>
              <td>
                <input type="checkbox" aria-label=${this.t('restore.mail.pick', { subject: m.subject })} .checked=${this.chosen.has(m.id)}
                  @change=${(e: Event) => {
                    const next = new Set(this.chosen);
                    if ((e.target as HTMLInputElement).checked) next.add(m.id);
                    else next.delete(m.id);
                    this.chosen = next;
                  }} />
              </td>
              <td>${m.subject}</td>
              <td>${m.from}</td>
              <td>${formatDate(this.locale, m.date)}</td>
              <td>${formatBytes(this.locale, m.size)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      <div part="pager" class="pager">
        <button class="secondary" ?disabled=${page.offset === 0} @click=${() => (this.messageOffset = Math.max(0, this.messageOffset - MESSAGE_PAGE))}>
          ${this.t('restore.previous')}
        </button>
        <span class="note">${this.t('restore.range', { first: page.total ? page.offset + 1 : 0, last: Math.min(page.offset + page.items.length, page.total), total: page.total })}</span>
        <button class="secondary" ?disabled=${page.offset + page.items.length >= page.total} @click=${() => (this.messageOffset += MESSAGE_PAGE)}>
          ${this.t('restore.next')}
        </button>
      </div>`;
  }
}
