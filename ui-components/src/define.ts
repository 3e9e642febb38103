import { DpGenerations } from './dp-generations.js';
import { DpGlobalRestore } from './dp-global-restore.js';
import { DpRestoreBrowser } from './dp-restore-browser.js';
import { DpSettings } from './dp-settings.js';
import { DpTaskProgress } from './dp-task-progress.js';

// Registering tags is apart from the classes, so that a host can choose its own prefix; registering twice is
// harmless. dp-generations renders <dp-task-progress>, so that tag keeps its name.

export const COMPONENTS = {
  'dp-settings': DpSettings,
  'dp-generations': DpGenerations,
  'dp-task-progress': DpTaskProgress,
  'dp-global-restore': DpGlobalRestore,
  'dp-restore-browser': DpRestoreBrowser,
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
