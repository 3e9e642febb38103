import { DpContainerBrowser, type DpContainerBrowserEventMap } from './dp-container-browser.js';
import { DpGenerations, type DpGenerationsEventMap } from './dp-generations.js';
import { DpGlobalRestore, type DpGlobalRestoreEventMap } from './dp-global-restore.js';
import { DpMailboxBrowser, type DpMailboxBrowserEventMap } from './dp-mailbox-browser.js';
import { DpRestoreBrowser, type DpRestoreBrowserEventMap } from './dp-restore-browser.js';
import { DpSettings, type DpSettingsEventMap } from './dp-settings.js';
import { DpTaskProgress, type DpTaskProgressEventMap } from './dp-task-progress.js';
import { DpTaskHistory } from './dp-task-history.js';

// Registering tags is apart from the classes, so that a host can choose its own prefix; registering twice is
// harmless. dp-generations, dp-restore-browser and dp-global-restore render <dp-task-progress>, and
// dp-restore-browser renders <dp-mailbox-browser> and <dp-container-browser>, so those tags keep their names.

export const COMPONENTS = {
  'dp-settings': DpSettings,
  'dp-generations': DpGenerations,
  'dp-task-progress': DpTaskProgress,
  'dp-global-restore': DpGlobalRestore,
  'dp-restore-browser': DpRestoreBrowser,
  'dp-mailbox-browser': DpMailboxBrowser,
  'dp-container-browser': DpContainerBrowser,
  'dp-task-history': DpTaskHistory,
} as const;

export type ComponentTag = keyof typeof COMPONENTS;

export function defineComponents(registry: CustomElementRegistry = customElements): ComponentTag[] {
  const defined: ComponentTag[] = [];
  for (const [tag, cls] of Object.entries(COMPONENTS) as [ComponentTag, CustomElementConstructor][]) {
    if (!registry.get(tag)) registry.define(tag, cls);
    defined.push(tag);
  }
  return defined;
}

// Typed DOM for a host written in TypeScript: querySelector('dp-generations') is a DpGenerations, and
// addEventListener('dp-backup-started', (e) => e.detail) knows the detail is a Task.
declare global {
  interface HTMLElementTagNameMap {
    'dp-settings': DpSettings;
    'dp-generations': DpGenerations;
    'dp-task-progress': DpTaskProgress;
    'dp-global-restore': DpGlobalRestore;
    'dp-restore-browser': DpRestoreBrowser;
    'dp-mailbox-browser': DpMailboxBrowser;
    'dp-container-browser': DpContainerBrowser;
    'dp-task-history': DpTaskHistory;
  }
  interface HTMLElementEventMap
    extends DpSettingsEventMap,
      DpGenerationsEventMap,
      DpTaskProgressEventMap,
      DpGlobalRestoreEventMap,
      DpRestoreBrowserEventMap,
      DpMailboxBrowserEventMap,
      DpContainerBrowserEventMap {}
}
