import { Task as AsyncTask } from '@lit/task';
import { css, html, nothing } from 'lit';
import type { Generation, Restorable, RestoreOperation, RestoreRequest, Schemas, Task } from '../../openapi/client.js';
import { DpElement, problemOf, type ProblemLike } from './base.js';
import { formatBytes, formatDate, MESSAGES, type MessageKey } from './i18n.js';

type Kind = Restorable['kind'];
type OperationId = RestoreOperation['identifier'];

const KINDS: Kind[] = ['USER', 'MAILSHARE', 'CALENDAR', 'ADDRESSBOOK', 'RESOURCE', 'OU', 'DOMAIN'];
const PAGE = 25;
const MESSAGE_PAGE = 50;

/**
 * The restore browser: choose a generation (date and status), filter by kind, search entities by name or email
 * (paged on the server; deleted ones flagged), pick one, see the operations that apply with a sentence each,
 * confirm, follow the task (dp-task-progress). For a mailbox: browse its saved folders and messages and restore a
 * folder or chosen messages. Fires `dp-restore-started` (detail: the task).
 */
export class DpRestoreBrowser extends DpElement {
  static override properties = {
    generationId: { state: true },
    kind: { state: true },
    search: { state: true },
    offset: { state: true },
    selected: { state: true },
    operation: { state: true },
    folder: { state: true },
    messageSearch: { state: true },
    messageOffset: { state: true },
    chosen: { state: true },
    confirming: { state: true },
    taskId: { state: true },
    problem: { state: true },
  };

  declare generationId: string | null;
  declare kind: Kind | '';
  declare search: string;
  declare offset: number;
  declare selected: Restorable | null;
  declare operation: OperationId | null;
  declare folder: string | null;
  declare messageSearch: string;
  declare messageOffset: number;
  declare chosen: Set<string>;
  declare confirming: RestoreRequest | null;
  declare taskId: string | null;
  declare problem: ProblemLike | null;
  private searchTimer: ReturnType<typeof setTimeout> | null = null;

  constructor() {
    super();
    this.generationId = null;
    this.kind = '';
    this.search = '';
    this.offset = 0;
    this.selected = null;
    this.operation = null;
    this.folder = null;
    this.messageSearch = '';
    this.messageOffset = 0;
    this.chosen = new Set();
    this.confirming = null;
    this.taskId = null;
    this.problem = null;
  }

  private readonly generations = new AsyncTask(this, {
    task: async ([client], { signal }) => {
      if (!client) throw new Error(this.t('common.noClient'));
      const gens = await client.listGenerations(signal);
      if (!this.generationId && gens.length) this.generationId = (gens.find((g) => g.status === 'VALID') ?? gens[0]).id;
      return gens;
    },
    args: () => [this.client] as const,
  });

  private readonly entities = new AsyncTask(this, {
    task: async ([client, generationId, kind, search, offset], { signal }) => {
      if (!client || !generationId) return null;
      return client.listEntities(generationId, { kind: kind || undefined, search: search || undefined, offset, limit: PAGE }, signal);
    },
    args: () => [this.client, this.generationId, this.kind, this.search, this.offset] as const,
  });

  private readonly capabilities = new AsyncTask(this, {
    task: async ([client, generationId], { signal }) => (client && generationId ? client.getRestoreCapabilities(generationId, signal) : ([] as RestoreOperation[])),
    args: () => [this.client, this.generationId] as const,
  });

  private readonly folders = new AsyncTask(this, {
    task: async ([client, generationId, entity], { signal }) => {
      if (!client || !generationId || !entity || (entity.kind !== 'USER' && entity.kind !== 'MAILSHARE') || entity.deleted) return null;
      return client.listMailFolders(generationId, entity.uid, signal);
    },
    args: () => [this.client, this.generationId, this.selected] as const,
  });

  private readonly messages = new AsyncTask(this, {
    task: async ([client, generationId, entity, folder, search, offset], { signal }) => {
      if (!client || !generationId || !entity || !folder) return null;
      return client.listMailMessages(generationId, entity.uid, { folder, search: search || undefined, offset, limit: MESSAGE_PAGE }, signal);
    },
    args: () => [this.client, this.generationId, this.selected, this.folder, this.messageSearch, this.messageOffset] as const,
  });

  static override styles = [
    DpElement.baseStyles,
    css`
      .filters {
        display: flex;
        flex-wrap: wrap;
        gap: 12px;
        align-items: flex-end;
        margin-bottom: 12px;
      }
      label {
        display: flex;
        flex-direction: column;
        gap: 4px;
        font-weight: 600;
      }
      select,
      input[type='search'] {
        font: inherit;
        padding: 5px 8px;
        border: 1px solid #9aa5b1;
        border-radius: 4px;
        min-width: 200px;
      }
      table {
        border-collapse: collapse;
        width: 100%;
      }
      th,
      td {
        text-align: left;
        padding: 6px 8px;
        border-bottom: 1px solid #e4e7eb;
        vertical-align: top;
      }
      th {
        background: #f5f7fa;
      }
      tr.selected {
        background: #e6f0f8;
      }
      .badge {
        display: inline-block;
        padding: 1px 8px;
        border-radius: 10px;
        font-size: 12px;
        font-weight: 600;
        background: #e4e7eb;
      }
      .badge.deleted {
        background: #fee4e2;
        color: #912018;
      }
      .pager {
        display: flex;
        gap: 8px;
        align-items: center;
        margin: 8px 0;
      }
      .panel {
        border: 1px solid #cbd2d9;
        border-radius: 6px;
        padding: 12px;
        margin: 12px 0;
      }
      fieldset {
        border: none;
        padding: 0;
        margin: 0 0 12px;
      }
      .op {
        display: flex;
        gap: 8px;
        align-items: flex-start;
        margin: 6px 0;
        font-weight: normal;
        flex-direction: row;
      }
      .op small {
        display: block;
        color: #52606d;
      }
      .mail {
        display: grid;
        grid-template-columns: minmax(160px, 1fr) 3fr;
        gap: 12px;
      }
      .folders button:not(.secondary) .note {
        color: #fff;
      }
      .folders button {
        display: block;
        width: 100%;
        text-align: left;
        margin: 2px 0;
      }
      .actions {
        display: flex;
        gap: 8px;
        flex-wrap: wrap;
        margin: 8px 0;
      }
      dialog {
        border: 1px solid #9aa5b1;
        border-radius: 6px;
        max-width: 520px;
      }
    `,
  ];

  private fail(err: unknown): void {
    this.problem = problemOf(err) ?? { status: 0, title: this.t('common.error'), detail: (err as Error).message };
  }

  private onSearch(e: Event): void {
    const value = (e.target as HTMLInputElement).value;
    if (this.searchTimer) clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => {
      this.search = value.trim();
      this.offset = 0;
    }, 250);
  }

  private pick(entity: Restorable): void {
    this.selected = entity;
    this.operation = null;
    this.folder = null;
    this.chosen = new Set();
    this.messageOffset = 0;
    this.messageSearch = '';
    this.problem = null;
  }

  /** The operations that apply to an entity: by kind; a deleted user gets complete.restore.user only (BlueMind). */
  private operationsFor(entity: Restorable, ops: RestoreOperation[]): RestoreOperation[] {
    const fine = new Set<string>(['restore.mail.folder', 'restore.mail.messages']);
    return ops
      .filter((o) => o.kinds.includes(entity.kind) && !fine.has(o.identifier))
      .filter((o) => (entity.deleted && entity.kind === 'USER' ? o.deletedEntitiesOnly : !o.deletedEntitiesOnly))
      .sort((a, b) => this.opLabel(a.identifier).localeCompare(this.opLabel(b.identifier), this.locale));
  }

  private opLabel(id: string): string {
    const key = `op.${id}` as MessageKey;
    return key in MESSAGES.en ? this.t(key) : id;
  }

  private opSentence(id: string): string {
    const key = `op.${id}.help` as MessageKey;
    return key in MESSAGES.en ? this.t(key) : '';
  }

  private ask(request: RestoreRequest, e: Event): void {
    this.confirming = request;
    this.openDialog(e);
  }

  private closeDialog(): void {
    this.confirming = null;
    this.closeOpenDialog();
  }

  private request(operation: OperationId, extra: Partial<RestoreRequest> = {}): RestoreRequest | null {
    const e = this.selected;
    if (!e || !this.generationId) return null;
    return { operation, generationId: this.generationId, entity: { kind: e.kind, uid: e.uid, domainUid: e.domainUid }, ...extra };
  }

  private async confirm(): Promise<void> {
    const req = this.confirming;
    this.closeDialog();
    if (!req || !this.client) return;
    this.problem = null;
    try {
      const started = await this.client.startRestore(req);
      this.taskId = started.task.id;
      this.dispatchEvent(new CustomEvent<Task>('dp-restore-started', { detail: started.task, bubbles: true, composed: true }));
    } catch (err) {
      this.fail(err);
    }
  }

  private problemBox(p: ProblemLike) {
    const unavailable = p.status === 501;
    return html`<div class="alert ${unavailable ? 'unavailable' : ''}" role="alert" data-problem-status=${p.status}>
      <strong>${unavailable ? this.t('common.unavailable') : p.title}</strong>${this.problemText(p)}
    </div>`;
  }

  private errorOf(err: unknown) {
    const p = problemOf(err);
    return p ? this.problemBox(p) : html`<div class="alert" role="alert"><strong>${this.t('common.error')}</strong>${(err as Error).message}</div>`;
  }

  override render() {
    return html`<section aria-labelledby="dp-restore-title">
      <h2 id="dp-restore-title">${this.t('restore.title')}</h2>
      ${this.generations.render({
        pending: () => html`<p class="note" role="status">${this.t('common.loading')}</p>`,
        error: (err) => this.errorOf(err),
        complete: (gens) => (gens.length ? this.browser(gens) : html`<p class="note">${this.t('restore.noGeneration')}</p>`),
      })}
    </section>`;
  }

  private browser(gens: Generation[]) {
    return html`
      <div class="filters">
        <label
          >${this.t('restore.generation')}
          <select
            id="generation"
            @change=${(e: Event) => {
              this.generationId = (e.target as HTMLSelectElement).value;
              this.offset = 0;
              this.selected = null;
            }}
          >
            ${gens.map(
              (g) => html`<option value=${g.id} ?selected=${g.id === this.generationId}>
                ${formatDate(this.locale, g.protectionTime)} — ${this.t(`status.${g.status}`)}
              </option>`,
            )}
          </select>
        </label>
        <label
          >${this.t('restore.kind')}
          <select
            id="kind"
            @change=${(e: Event) => {
              this.kind = (e.target as HTMLSelectElement).value as Kind | '';
              this.offset = 0;
            }}
          >
            <option value="">${this.t('restore.kind.all')}</option>
            ${KINDS.map((k) => html`<option value=${k} ?selected=${k === this.kind}>${this.t(`kind.${k}`)}</option>`)}
          </select>
        </label>
        <label
          >${this.t('restore.search')}
          <input id="search" type="search" placeholder=${this.t('restore.search.placeholder')} @input=${this.onSearch} />
        </label>
      </div>
      ${this.problem ? this.problemBox(this.problem) : nothing}
      ${this.taskId ? html`<div class="panel"><dp-task-progress task-id=${this.taskId}></dp-task-progress></div>` : nothing}
      ${this.entities.render({
        pending: () => html`<p class="note" role="status">${this.t('common.loading')}</p>`,
        error: (err) => this.errorOf(err),
        complete: (page) => (page ? this.table(page) : nothing),
      })}
      ${this.selected ? this.entityPanel(this.selected) : nothing} ${this.confirming ? this.dialog(this.confirming) : nothing}
    `;
  }

  private table(page: Schemas['RestorablePage']) {
    if (page.total === 0) return html`<p class="note">${this.t('restore.noEntity')}</p>`;
    const last = Math.min(page.offset + page.items.length, page.total);
    return html`<table aria-describedby="dp-restore-title">
        <thead>
          <tr>
            <th scope="col">${this.t('restore.col.kind')}</th>
            <th scope="col">${this.t('restore.col.entity')}</th>
            <th scope="col">${this.t('restore.col.domain')}</th>
            <th scope="col">${this.t('restore.col.action')}</th>
          </tr>
        </thead>
        <tbody>
          ${page.items.map(
            (e) => html`<tr data-entity=${e.uid} class=${this.selected?.uid === e.uid ? 'selected' : ''}>
              <td>${this.t(`kind.${e.kind}`)}</td>
              <td>
                ${e.displayName} ${e.email ? html`<div class="note">${e.email}</div>` : nothing}
                ${e.deleted ? html`<span class="badge deleted">${this.t('restore.deleted')}</span>` : nothing}
              </td>
              <td>${e.domainUid}</td>
              <td>
                <button class="secondary" aria-label=${this.t('restore.chooseLabel', { name: e.displayName })} @click=${() => this.pick(e)}>
                  ${this.t('restore.choose')}
                </button>
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
      <div class="pager">
        <button class="secondary" ?disabled=${page.offset === 0} @click=${() => (this.offset = Math.max(0, this.offset - PAGE))}>
          ${this.t('restore.previous')}
        </button>
        <span class="note">${this.t('restore.range', { first: page.offset + 1, last, total: page.total })}</span>
        <button class="secondary" ?disabled=${last >= page.total} @click=${() => (this.offset += PAGE)}>${this.t('restore.next')}</button>
      </div>`;
  }

  private entityPanel(e: Restorable) {
    return html`<div class="panel" id="entity-panel">
      <h3>${e.displayName} ${e.deleted ? html`<span class="badge deleted">${this.t('restore.deleted')}</span>` : nothing}</h3>
      ${this.capabilities.render({
        pending: () => html`<p class="note">${this.t('common.loading')}</p>`,
        error: (err) => this.errorOf(err),
        complete: (ops) => this.operations(e, ops),
      })}
      ${this.folders.render({
        pending: () => nothing,
        error: (err) => this.errorOf(err),
        complete: (folders) => (folders ? this.mailbox(folders) : nothing),
      })}
    </div>`;
  }

  private operations(e: Restorable, ops: RestoreOperation[]) {
    const list = this.operationsFor(e, ops);
    if (list.length === 0) return html`<p class="note">${this.t('restore.noOperation')}</p>`;
    return html`<fieldset>
        <legend>${this.t('restore.operations')}</legend>
        ${list.map(
          (o) => html`<label class="op">
            <input type="radio" name="operation" value=${o.identifier} .checked=${this.operation === o.identifier}
              @change=${() => (this.operation = o.identifier)} />
            <span>${this.opLabel(o.identifier)}<small>${this.opSentence(o.identifier)}</small></span>
          </label>`,
        )}
      </fieldset>
      <button id="restore" ?disabled=${!this.operation} @click=${(ev: Event) => {
        const r = this.operation ? this.request(this.operation) : null;
        if (r) this.ask(r, ev);
      }}>${this.t('restore.restore')}</button>`;
  }

  private mailbox(folders: Schemas['MailFolder'][]) {
    return html`<h4>${this.t('restore.mail.title')}</h4>
      <div class="mail">
        <nav class="folders" aria-label=${this.t('restore.mail.folders')}>
          ${folders.map(
            (f) => html`<button class=${this.folder === f.path ? '' : 'secondary'} data-folder=${f.path}
              aria-pressed=${this.folder === f.path ? 'true' : 'false'}
              @click=${() => {
                this.folder = f.path;
                this.messageOffset = 0;
                this.chosen = new Set();
              }}>
              ${f.path} <span class="note">(${f.messages}, ${formatBytes(this.locale, f.size)})</span>
            </button>`,
          )}
        </nav>
        <div>${this.folder ? this.messageList(this.folder) : html`<p class="note">${this.t('restore.mail.pickFolder')}</p>`}</div>
      </div>`;
  }

  private messageList(folder: string) {
    return html`<div class="actions">
        <button id="restore-folder" @click=${(ev: Event) => {
          const r = this.request('restore.mail.folder', { folder });
          if (r) this.ask(r, ev);
        }}>${this.t('restore.mail.restoreFolder', { folder })}</button>
        <button id="restore-messages" ?disabled=${this.chosen.size === 0} @click=${(ev: Event) => {
          const r = this.request('restore.mail.messages', { folder, messageIds: [...this.chosen] });
          if (r) this.ask(r, ev);
        }}>${this.t('restore.mail.restoreMessages', { count: this.chosen.size })}</button>
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
        error: (err) => this.errorOf(err),
        complete: (page) =>
          page
            ? html`<table>
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
                <div class="pager">
                  <button class="secondary" ?disabled=${page.offset === 0} @click=${() => (this.messageOffset = Math.max(0, this.messageOffset - MESSAGE_PAGE))}>
                    ${this.t('restore.previous')}
                  </button>
                  <span class="note">${this.t('restore.range', { first: page.total ? page.offset + 1 : 0, last: Math.min(page.offset + page.items.length, page.total), total: page.total })}</span>
                  <button class="secondary" ?disabled=${page.offset + page.items.length >= page.total} @click=${() => (this.messageOffset += MESSAGE_PAGE)}>
                    ${this.t('restore.next')}
                  </button>
                </div>`
            : nothing,
      })}`;
  }

  private dialog(r: RestoreRequest) {
    const what = r.folder ? `${this.opLabel(r.operation)} — ${r.folder}` : this.opLabel(r.operation);
    return html`<dialog aria-labelledby="restore-confirm-title" @cancel=${(e: Event) => (e.preventDefault(), this.closeDialog())}>
      <h2 id="restore-confirm-title">${this.t('restore.confirmTitle')}</h2>
      <p>${this.t('restore.confirmText', { operation: what, name: this.selected?.displayName ?? r.entity.uid })}</p>
      <div class="actions">
        <button class="secondary" @click=${this.closeDialog}>${this.t('common.cancel')}</button>
        <button id="confirm-restore" @click=${this.confirm}>${this.t('restore.restore')}</button>
      </div>
    </dialog>`;
  }
}
