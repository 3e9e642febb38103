import { css, html, nothing } from 'lit';
import type { Generation, Schemas, Task } from '../../openapi/client.js';
import { DpElement, problemOf, type ProblemLike } from './base.js';
import { formatDate } from './i18n.js';

type Report = Schemas['PrerequisiteReport'];

export interface DpGlobalRestoreEventMap {
  /** The global restore started (detail: its task). */
  'dp-global-restore-started': CustomEvent<Task>;
}

/**
 * The setup wizard's global restore step: point at a repository, choose a generation, check the prerequisites
 * (explained one by one, nothing touched), then start and follow the restore. Fires `dp-global-restore-started`
 * (detail: the task).
 */
export class DpGlobalRestore extends DpElement<DpGlobalRestoreEventMap> {
  static override properties = {
    location: { state: true },
    generations: { state: true },
    chosen: { state: true },
    report: { state: true },
    taskId: { state: true },
    problem: { state: true },
    busy: { state: true },
  };

  declare location: string;
  declare generations: Generation[] | null;
  declare chosen: string | null;
  declare report: Report | null;
  declare taskId: string | null;
  declare problem: ProblemLike | null;
  declare busy: boolean;

  constructor() {
    super();
    this.location = '';
    this.generations = null;
    this.chosen = null;
    this.report = null;
    this.taskId = null;
    this.problem = null;
    this.busy = false;
  }

  static override styles = [
    DpElement.baseStyles,
    css`
      form,
      fieldset {
        display: grid;
        gap: var(--_dp-space-2);
        max-width: 640px;
      }
      fieldset {
        border: 1px solid var(--_dp-color-border);
        border-radius: var(--_dp-radius-large);
        padding: 10px 14px;
        margin: var(--_dp-space-3) 0;
      }
      label {
        font-weight: 600;
      }
      fieldset label {
        font-weight: normal;
      }
      input[type='text'] {
        font: inherit;
        padding: 6px var(--_dp-space-2);
        border: 1px solid var(--_dp-color-control-border);
        border-radius: var(--_dp-radius);
        width: 100%;
      }
      ul.checks {
        list-style: none;
        padding: 0;
      }
      .met {
        color: var(--_dp-color-success);
      }
      .unmet {
        color: var(--_dp-color-danger);
      }
    `,
  ];

  private async run<T>(work: () => Promise<T>): Promise<T | undefined> {
    this.problem = null;
    this.busy = true;
    try {
      return await work();
    } catch (err) {
      this.problem = problemOf(err) ?? { status: 0, title: this.t('common.error'), detail: (err as Error).message };
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  private async discover(e: Event): Promise<void> {
    e.preventDefault();
    if (!this.client) return;
    this.generations = null;
    this.report = null;
    const client = this.client;
    const found = await this.run(() => client.discoverRepository(this.location.trim()));
    if (found) {
      this.generations = found;
      this.chosen = found.find((g) => g.status === 'VALID')?.id ?? found[0]?.id ?? null;
    }
  }

  private async check(): Promise<void> {
    if (!this.client || !this.chosen) return;
    const client = this.client;
    const chosen = this.chosen;
    this.report = (await this.run(() => client.checkGlobalRestore(this.location.trim(), chosen))) ?? null;
  }

  private async start(): Promise<void> {
    if (!this.client || !this.chosen || !confirm(this.t('drp.confirm'))) return;
    const client = this.client;
    const chosen = this.chosen;
    const started = await this.run(() => client.startGlobalRestore(this.location.trim(), chosen));
    if (started) {
      this.taskId = started.task.id;
      this.emit('dp-global-restore-started', started.task);
    }
  }

  override render() {
    const p = this.problem;
    return html`<section aria-labelledby="dp-drp-title">
      <h2 part="title" id="dp-drp-title">${this.t('drp.title')}</h2>
      <p class="note">${this.t('drp.intro')}</p>
      <form part="form" @submit=${this.discover}>
        <label for="location">${this.t('drp.location')}</label>
        <input
          part="input"
          id="location"
          type="text"
          .value=${this.location}
          aria-describedby="location-help"
          @input=${(e: Event) => (this.location = (e.target as HTMLInputElement).value)}
        />
        <span class="note" id="location-help">${this.t('drp.location.help')}</span>
        <div><button type="submit" ?disabled=${this.busy || !this.location.trim()}>${this.t('drp.discover')}</button></div>
      </form>
      ${p ? this.problemBox(p) : nothing}
      ${this.generations ? this.choice(this.generations) : nothing}
      ${this.report
        ? html`<ul part="checks" class="checks" aria-label=${this.t('drp.check')}>
            ${this.report.checks.map(
              (c) => html`<li class=${c.ok ? 'met' : 'unmet'}>${c.ok ? this.t('drp.ok') : this.t('drp.notOk')}: ${c.message}</li>`,
            )}
          </ul>`
        : nothing}
      ${this.taskId ? html`<dp-task-progress task-id=${this.taskId}></dp-task-progress>` : nothing}
    </section>`;
  }

  private choice(gens: Generation[]) {
    if (gens.length === 0) return html`<p class="note">${this.t('drp.noGenerations')}</p>`;
    return html`<fieldset part="generations">
        <legend>${this.t('drp.generation')}</legend>
        ${gens.map(
          (g) => html`<label
            ><input
              type="radio"
              name="generation"
              .checked=${g.id === this.chosen}
              @change=${() => ((this.chosen = g.id), (this.report = null))}
            />
            ${formatDate(this.locale, g.protectionTime)} — ${this.t(`status.${g.status}`)} — v${g.productVersion}</label
          >`,
        )}
      </fieldset>
      <div part="actions" class="actions">
        <button class="secondary" @click=${this.check} ?disabled=${this.busy || !this.chosen}>${this.t('drp.check')}</button>
        <button @click=${this.start} ?disabled=${this.busy || !this.report?.ok}>${this.t('drp.start')}</button>
      </div>`;
  }
}
