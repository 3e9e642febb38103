export { DpSettings } from './dp-settings.js';
export { DpGenerations } from './dp-generations.js';
export { DpTaskProgress } from './dp-task-progress.js';
export { DpGlobalRestore } from './dp-global-restore.js';
export { DpRestoreBrowser } from './dp-restore-browser.js';
export { defineComponents, COMPONENTS, type ComponentTag } from './define.js';
export { clientContext, localeContext, sessionContext } from './context.js';
export { translate, MESSAGES, type Locale, type MessageKey } from './i18n.js';
