// What the UI entry registers into a host console, as data (no DOM here, so a Node test can compare it with the
// manifest).

export type Localised = { en: string; fr: string };

export interface PageRegistration {
  slot: string;
  tag: string;
  label: Localised;
  group: Localised;
  roles: ('manageDataProtect' | 'manageRestore')[];
}

export const SECTION = {
  id: 'backup',
  label: { en: 'Backup and Restore', fr: 'Sauvegarde et restauration' },
  icon: 'fa-hdd-o',
  priority: 96,
} as const;

export const PAGES: readonly PageRegistration[] = [
  {
    slot: 'backup/settings/configuration',
    tag: 'dp-settings',
    label: { en: 'Configuration', fr: 'Configuration' },
    group: { en: 'Settings', fr: 'Paramètres' },
    roles: ['manageDataProtect'],
  },
  {
    slot: 'backup/protected-data/navigator',
    tag: 'dp-generations',
    label: { en: 'DataProtect navigator', fr: 'Navigateur DataProtect' },
    group: { en: 'Protected data', fr: 'Données protégées' },
    roles: ['manageDataProtect', 'manageRestore'],
  },
  {
    slot: 'backup/protected-data/restore',
    tag: 'dp-restore-browser',
    label: { en: 'Restore', fr: 'Restauration' },
    group: { en: 'Protected data', fr: 'Données protégées' },
    roles: ['manageDataProtect', 'manageRestore'],
  },
  {
    slot: 'backup/protected-data/tasks',
    tag: 'dp-task-history',
    label: { en: 'Task history', fr: 'Historique des tâches' },
    group: { en: 'Protected data', fr: 'Données protégées' },
    roles: ['manageDataProtect', 'manageRestore'],
  },
];

export interface WizardStepRegistration {
  slot: string;
  tag: string;
  label: Localised;
}

/** The setup wizard's "global restore" step (rebuild a new installation from a backup repository). */
export const WIZARD_STEPS: readonly WizardStepRegistration[] = [
  { slot: 'setup-wizard/global-restore', tag: 'dp-global-restore', label: { en: 'Global restore', fr: 'Restauration globale' } },
];

export const COMPONENT_TAGS = ['dp-settings', 'dp-generations', 'dp-task-progress', 'dp-global-restore', 'dp-restore-browser', 'dp-mailbox-browser', 'dp-container-browser', 'dp-task-history'] as const;

export const CONTEXT_KEYS = ['bm-dataprotect.client', 'bm-dataprotect.locale', 'bm-dataprotect.session'] as const;
