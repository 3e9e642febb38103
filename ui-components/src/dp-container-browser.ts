import { Task as AsyncTask } from '@lit/task';
import { css, html, nothing } from 'lit';
import type { Schemas } from '../../openapi/client.js';
import { DpElement } from './base.js';
import { translatePlural, type Locale } from './i18n.js';

const ITEM_PAGE = 50;

type SavedContainer = Schemas['SavedContainer'];

/** What the administrator chose to bring back from an entity's saved containers: one container, or items of one. */
export type ContainerRestoreRequest =
  | { operation: 'replace.container' | 'addmissing.container'; container: string; containerName: string }
  | { operation: 'replace.items' | 'addmissing.items'; container: string; containerName: string; itemUids: string[] };

export interface DpContainerBrowserEventMap {
  /** One container or chosen items of it to restore; the page around confirms and starts the restore. */
  'dp-container-restore-request': CustomEvent<ContainerRestoreRequest>;
}

/**
 * A saved date as the item had it: wall time in its own zone (named beside it), or a whole day. Formatted as UTC
 * so that the browser's own zone moves nothing.
 */
function savedDate(locale: Locale, date: string | null, timeZone: string | null): string {
  if (!date) return '';
  const lang = locale === 'fr' ? 'fr-FR' : 'en-GB';
  if (date.length === 10) return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeZone: 'UTC' }).format(new Date(`${date}T00:00:00Z`));
  const text = new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(`${date}Z`));
  return timeZone ? `${text} (${timeZone})` : `${text} (UTC)`;
}

/**
 * An entity's calendars, address books, task lists and notes as a generation saved them (each flagged when it no
 * longer exists), and a chosen container's items with their summary, date and whether they still exist, searched
 * and paged on the server. Properties `generationId` and `entityUid` (attributes `generation-id`, `entity-uid`).
 * Fires `dp-container-restore-request` (detail: ContainerRestoreRequest); it starts nothing itself. Focusing the
 * element gives the focus back to the control that fired the last request.
 */
export class DpContainerBrowser extends DpElement<DpContainerBrowserEventMap> {
  static override properties = {
    generationId: { type: String, attribute: 'generation-id' },
    entityUid: { type: String, attribute: 'entity-uid' },
    container: { state: true },
    itemSearch: { state: true },
    onlyMissing: { state: true },
    itemOffset: { state: true },
    chosen: { state: true },
  };

  declare generationId: string | null;
  declare entityUid: string | null;
  declare container: SavedContainer | null;
  declare itemSearch: string;
  declare onlyMissing: boolean;
  declare itemOffset: number;
  declare chosen: Set<string>;
  private lastRequester: HTMLElement | null = null;

  constructor() {
    super();
    this.generationId = null;
    this.entityUid = null;
    this.container = null;
    this.itemSearch = '';
    this.onlyMissing = false;
    this.itemOffset = 0;
    this.chosen = new Set();
  }

  private readonly containers = new AsyncTask(this, {
    task: async ([client, generationId, entityUid], { signal }) => {
      if (!client || !generationId || !entityUid) return null;
      // Web-app data has no items worth choosing one by one: it is restored whole (replace.webappdata).
      return (await client.listEntityContainers(generationId, entityUid, signal)).filter((c) => c.type !== 'webappdata');
    },
    args: () => [this.client, this.generationId, this.entityUid] as const,
  });

  private readonly items = new AsyncTask(this, {
    task: async ([client, generationId, entityUid, container, search, onlyMissing, offset], { signal }) => {
      if (!client || !generationId || !entityUid || !container) return null;
      return client.listContainerItems(
        generationId, entityUid, container,
        { search: search || undefined, missing: onlyMissing ? true : undefined, offset, limit: ITEM_PAGE },
        signal,
      );
    },
    args: () => [this.client, this.generationId, this.entityUid, this.container?.uid ?? null, this.itemSearch, this.onlyMissing, this.itemOffset] as const,
  });

  static override styles = [
    DpElement.baseStyles,
    DpElement.listStyles,
    css`
      .layout {
        display: grid;
        grid-template-columns: minmax(160px, 1fr) 3fr;
        gap: var(--_dp-space-3);
      }
      .containers button:not(.secondary) .note {
        color: var(--_dp-color-on-primary);
      }
      .containers button {
        display: block;
        width: 100%;
        text-align: left;
        margin: 2px 0;
      }
      label.inline {
        flex-direction: row;
        align-items: center;
        gap: var(--_dp-space-2);
        font-weight: normal;
      }
      .gone {
        color: var(--_dp-color-invalid-text);
        font-weight: 600;
      }
    `,
  ];

  /** Another entity or generation: its own containers, nothing chosen. */
  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    if (changed.has('generationId') || changed.has('entityUid')) {
      this.container = null;
      this.itemSearch = '';
      this.onlyMissing = false;
      this.itemOffset = 0;
      this.chosen = new Set();
    }
  }

  override focus(options?: FocusOptions): void {
    if (this.lastRequester?.isConnected) this.lastRequester.focus(options);
    else super.focus(options);
  }

  private request(detail: ContainerRestoreRequest, e: Event): void {
    this.lastRequester = e.currentTarget as HTMLElement;
    this.emit('dp-container-restore-request', detail);
  }

  private open(c: SavedContainer): void {
    this.container = c;
    this.itemOffset = 0;
    this.chosen = new Set();
  }

  override render() {
    return this.containers.render({
      pending: () => nothing,
      error: (err) => this.errorBox(err),
      complete: (list) => (list && list.length ? this.browser(list) : nothing),
    });
  }

  private browser(list: SavedContainer[]) {
    return html`<h4 part="title">${this.t('restore.items.title')}</h4>
      <div class="layout">
        <nav part="containers" class="containers" aria-label=${this.t('restore.items.containers')}>
          ${list.map(
            (c) => html`<button part="container" class=${this.container?.uid === c.uid ? '' : 'secondary'} data-container=${c.uid}
              aria-pressed=${this.container?.uid === c.uid ? 'true' : 'false'}
              @click=${() => this.open(c)}>
              ${c.name || c.uid}
              <span class="note">(${this.t(`restore.items.type.${c.type}`)}, ${translatePlural(this.locale, 'restore.items.count', c.items)})</span>
              ${c.exists ? nothing : html`<span class="note gone">${this.t('restore.items.containerGone')}</span>`}
            </button>`,
          )}
        </nav>
        <div>${this.container ? this.itemList(this.container) : html`<p class="note">${this.t('restore.items.pickContainer')}</p>`}</div>
      </div>`;
  }

  private itemList(c: SavedContainer) {
    const name = c.name || c.uid;
    const chosen = [...this.chosen];
    return html`<div part="actions" class="actions">
        <button id="replace-container" class="secondary"
          @click=${(ev: Event) => this.request({ operation: 'replace.container', container: c.uid, containerName: name }, ev)}>
          ${this.t(`restore.items.replaceContainer.${c.type}`)}
        </button>
        <button id="addmissing-container" class="secondary"
          @click=${(ev: Event) => this.request({ operation: 'addmissing.container', container: c.uid, containerName: name }, ev)}>
          ${this.t(`restore.items.addMissingContainer.${c.type}`)}
        </button>
        <button id="addmissing-items" ?disabled=${chosen.length === 0}
          @click=${(ev: Event) => this.request({ operation: 'addmissing.items', container: c.uid, containerName: name, itemUids: chosen }, ev)}>
          ${translatePlural(this.locale, 'restore.items.addMissingItems', chosen.length)}
        </button>
        <button id="replace-items" ?disabled=${chosen.length === 0}
          @click=${(ev: Event) => this.request({ operation: 'replace.items', container: c.uid, containerName: name, itemUids: chosen }, ev)}>
          ${translatePlural(this.locale, 'restore.items.replaceItems', chosen.length)}
        </button>
      </div>
      <div class="actions">
        <label>
          <span class="note">${this.t('restore.items.search')}</span>
          <input type="search" id="item-search" @change=${(e: Event) => {
            this.itemSearch = (e.target as HTMLInputElement).value.trim();
            this.itemOffset = 0;
          }} />
        </label>
        <label class="inline">
          <input type="checkbox" id="only-missing" .checked=${this.onlyMissing} @change=${(e: Event) => {
            this.onlyMissing = (e.target as HTMLInputElement).checked;
            this.itemOffset = 0;
          }} />
          ${this.t('restore.items.onlyMissing')}
        </label>
      </div>
      ${this.items.render({
        pending: () => html`<p class="note" role="status">${this.t('common.loading')}</p>`,
        error: (err) => this.errorBox(err),
        complete: (page) => (page ? this.itemTable(page) : nothing),
      })}`;
  }

  private itemTable(page: Schemas['SavedItemPage']) {
    return html`<table part="items">
        <thead>
          <tr>
            <th scope="col"><span class="note">✓</span></th>
            <th scope="col">${this.t('restore.items.summary')}</th>
            <th scope="col">${this.t('restore.items.date')}</th>
            <th scope="col">${this.t('restore.items.state')}</th>
          </tr>
        </thead>
        <tbody>
          ${page.items.map(
            (i) => html`<tr data-item=${i.uid} data-exists=${i.exists ? 'true' : 'false'}>
              <td>
                <input type="checkbox" aria-label=${this.t('restore.items.pick', { summary: i.summary || i.uid })} .checked=${this.chosen.has(i.uid)}
                  @change=${(e: Event) => {
                    const next = new Set(this.chosen);
                    if ((e.target as HTMLInputElement).checked) next.add(i.uid);
                    else next.delete(i.uid);
                    this.chosen = next;
                  }} />
              </td>
              <td>${i.summary || i.uid}</td>
              <td>${savedDate(this.locale, i.date, i.timeZone)}</td>
              <td>${i.exists ? this.t('restore.items.exists') : html`<span class="gone">${this.t('restore.items.gone')}</span>`}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      <div part="pager" class="pager">
        <button class="secondary" ?disabled=${page.offset === 0} @click=${() => (this.itemOffset = Math.max(0, this.itemOffset - ITEM_PAGE))}>
          ${this.t('restore.previous')}
        </button>
        <span class="note">${this.t('restore.range', { first: page.total ? page.offset + 1 : 0, last: Math.min(page.offset + page.items.length, page.total), total: page.total })}</span>
        <button class="secondary" ?disabled=${page.offset + page.items.length >= page.total} @click=${() => (this.itemOffset += ITEM_PAGE)}>
          ${this.t('restore.next')}
        </button>
      </div>`;
  }
}
