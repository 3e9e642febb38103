// Every visible string of the components, in English and French. The console's language picks (through context).

export type Locale = 'en' | 'fr';

const en = {
  'common.loading': 'Loading…',
  'common.retry': 'Retry',
  'common.cancel': 'Cancel',
  'common.close': 'Close',
  'common.unavailable': 'Not available in this build',
  'common.error': 'Something went wrong',
  'common.noClient': 'The API client is not connected.',
  'unavailable.backup-runner': 'Backups cannot run yet: this build has no backup runner (the nightly backup, issue 5). Nothing was started.',
  'unavailable.generations':
    'Generations cannot be listed yet: this build has no backup runner, so no generation exists and none can be read from the repository (issue 5).',
  'unavailable.restore': 'Restores are not available yet in this build (single-entity restore, issue 6).',
  'unavailable.global-restore': 'Global restore is not available yet in this build.',

  'settings.title': 'Backup configuration',
  'settings.retentionDays': 'Retention (days)',
  'settings.retentionDays.help': 'Generations of the last N days are kept; the newest valid one always is.',
  'settings.backupEmails': 'Backup emails',
  'settings.backupArchivedEmails': 'Backup archived emails',
  'settings.backupTime': 'Backup time',
  'settings.backupTime.help': 'Every day at this time (server time).',
  'settings.repositoryLocation': 'Repository location',
  'settings.repositoryLocation.help': 'An absolute directory (NFS share) or an s3:// URL.',
  'settings.skippedTags': 'Skipped tags',
  'settings.skippedTags.help': 'Comma-separated, for example bm/es, filehosting/data.',
  'settings.save': 'Save',
  'settings.saving': 'Saving…',
  'settings.saved': 'Saved {when} by {who}.',
  'settings.defaults': 'The default settings apply (never saved).',
  'settings.unsaved': 'Unsaved changes.',
  'settings.invalid': 'Please correct the highlighted fields.',
  'settings.err.required': 'Required.',
  'settings.err.retention': 'A whole number of days between 1 and 3650.',
  'settings.err.time': 'A time as HH:MM, from 00:00 to 23:59.',
  'settings.err.location': 'An absolute directory (starting with /) or an s3:// URL.',
  'settings.err.tags': 'Tags look like category/name, lowercase.',

  'generations.title': 'Protected data',
  'generations.backupNow': 'Backup now',
  'generations.starting': 'Starting…',
  'generations.empty': 'No generation yet.',
  'generations.date': 'Date',
  'generations.status': 'Status',
  'generations.size': 'Size',
  'generations.parts': 'Parts',
  'generations.actions': 'Actions',
  'generations.delete': 'Delete',
  'generations.deleteLabel': 'Delete the generation of {date}',
  'generations.confirmTitle': 'Delete this generation?',
  'generations.confirmText': 'Forgetting protected data is permanent. The generation of {date} will no longer be restorable.',
  'generations.confirm': 'Delete',
  'generations.running': 'Backup in progress',
  'generations.alreadyRunning': 'A backup was already running: following it.',
  'generations.added': '{size} added',
  'generations.duration': '{duration}',

  'status.VALID': 'Valid',
  'status.UNKNOWN': 'With warnings',
  'status.INVALID': 'Invalid',

  'drp.title': 'Global restore',
  'drp.intro': 'Rebuild this installation from a backup repository: database, mail and configuration.',
  'drp.location': 'Repository location',
  'drp.location.help': 'The backup share of the old installation (an absolute directory or an s3:// URL).',
  'drp.discover': 'Find generations',
  'drp.generation': 'Generation to restore',
  'drp.check': 'Check prerequisites',
  'drp.start': 'Start the global restore',
  'drp.confirm': 'This replaces the data of this installation with the chosen generation. Continue?',
  'drp.ok': 'Met',
  'drp.notOk': 'Not met',
  'drp.noGenerations': 'This repository holds no generation.',

  'task.progress': 'Progress',
  'task.log': 'Log',
  'task.cancel': 'Cancel task',
  'task.cancelling': 'Cancelling…',
  'task.status.RUNNING': 'Running',
  'task.status.SUCCEEDED': 'Finished',
  'task.status.FAILED': 'Failed',
  'task.status.CANCELLED': 'Cancelled',
  'task.status.INTERRUPTED': 'Interrupted',
  'task.noTask': 'No task selected.',
  'task.files': 'Files',
  'task.download': 'Download {name}',
};

export type MessageKey = keyof typeof en;

const fr: Record<MessageKey, string> = {
  'common.loading': 'Chargement…',
  'common.retry': 'Réessayer',
  'common.cancel': 'Annuler',
  'common.close': 'Fermer',
  'common.unavailable': 'Indisponible dans cette version',
  'common.error': 'Une erreur est survenue',
  'common.noClient': "Le client de l'API n'est pas connecté.",
  'unavailable.backup-runner':
    "Les sauvegardes ne peuvent pas encore s'exécuter : cette version n'a pas de moteur de sauvegarde (la sauvegarde nocturne, ticket 5). Rien n'a été lancé.",
  'unavailable.generations':
    "Les générations ne peuvent pas encore être listées : sans moteur de sauvegarde, aucune génération n'existe ni ne peut être lue dans le dépôt (ticket 5).",
  'unavailable.restore': 'Les restaurations ne sont pas encore disponibles dans cette version (restauration unitaire, ticket 6).',
  'unavailable.global-restore': "La restauration globale n'est pas encore disponible dans cette version.",

  'settings.title': 'Configuration de la sauvegarde',
  'settings.retentionDays': 'Rétention (jours)',
  'settings.retentionDays.help': 'Les générations des N derniers jours sont conservées ; la plus récente valide toujours.',
  'settings.backupEmails': 'Sauvegarder les e-mails',
  'settings.backupArchivedEmails': 'Sauvegarder les e-mails archivés',
  'settings.backupTime': 'Heure de sauvegarde',
  'settings.backupTime.help': 'Chaque jour à cette heure (heure du serveur).',
  'settings.repositoryLocation': 'Emplacement du dépôt',
  'settings.repositoryLocation.help': 'Un répertoire absolu (partage NFS) ou une URL s3://.',
  'settings.skippedTags': 'Tags exclus',
  'settings.skippedTags.help': 'Séparés par des virgules, par exemple bm/es, filehosting/data.',
  'settings.save': 'Enregistrer',
  'settings.saving': 'Enregistrement…',
  'settings.saved': 'Enregistré le {when} par {who}.',
  'settings.defaults': "Les réglages par défaut s'appliquent (jamais enregistrés).",
  'settings.unsaved': 'Modifications non enregistrées.',
  'settings.invalid': 'Veuillez corriger les champs signalés.',
  'settings.err.required': 'Obligatoire.',
  'settings.err.retention': 'Un nombre entier de jours entre 1 et 3650.',
  'settings.err.time': 'Une heure au format HH:MM, de 00:00 à 23:59.',
  'settings.err.location': 'Un répertoire absolu (commençant par /) ou une URL s3://.',
  'settings.err.tags': 'Les tags ont la forme catégorie/nom, en minuscules.',

  'generations.title': 'Données protégées',
  'generations.backupNow': 'Sauvegarder maintenant',
  'generations.starting': 'Démarrage…',
  'generations.empty': 'Aucune génération pour le moment.',
  'generations.date': 'Date',
  'generations.status': 'État',
  'generations.size': 'Taille',
  'generations.parts': 'Parties',
  'generations.actions': 'Actions',
  'generations.delete': 'Supprimer',
  'generations.deleteLabel': 'Supprimer la génération du {date}',
  'generations.confirmTitle': 'Supprimer cette génération ?',
  'generations.confirmText': 'L’oubli de données protégées est définitif. La génération du {date} ne sera plus restaurable.',
  'generations.confirm': 'Supprimer',
  'generations.running': 'Sauvegarde en cours',
  'generations.alreadyRunning': 'Une sauvegarde était déjà en cours : suivi de celle-ci.',
  'generations.added': '{size} ajoutés',
  'generations.duration': '{duration}',

  'status.VALID': 'Valide',
  'status.UNKNOWN': 'Avec avertissements',
  'status.INVALID': 'Invalide',

  'drp.title': 'Restauration globale',
  'drp.intro': 'Reconstruire cette installation depuis un dépôt de sauvegarde : base de données, e-mails et configuration.',
  'drp.location': 'Emplacement du dépôt',
  'drp.location.help': "Le partage de sauvegarde de l'ancienne installation (un répertoire absolu ou une URL s3://).",
  'drp.discover': 'Rechercher les générations',
  'drp.generation': 'Génération à restaurer',
  'drp.check': 'Vérifier les prérequis',
  'drp.start': 'Lancer la restauration globale',
  'drp.confirm': 'Les données de cette installation seront remplacées par la génération choisie. Continuer ?',
  'drp.ok': 'Rempli',
  'drp.notOk': 'Non rempli',
  'drp.noGenerations': "Ce dépôt ne contient aucune génération.",

  'task.progress': 'Progression',
  'task.log': 'Journal',
  'task.cancel': 'Annuler la tâche',
  'task.cancelling': 'Annulation…',
  'task.status.RUNNING': 'En cours',
  'task.status.SUCCEEDED': 'Terminée',
  'task.status.FAILED': 'En échec',
  'task.status.CANCELLED': 'Annulée',
  'task.status.INTERRUPTED': 'Interrompue',
  'task.noTask': 'Aucune tâche sélectionnée.',
  'task.files': 'Fichiers',
  'task.download': 'Télécharger {name}',
};

export const MESSAGES: Record<Locale, Record<MessageKey, string>> = { en, fr };

export function translate(locale: Locale, key: MessageKey, params: Record<string, string | number> = {}): string {
  const template = MESSAGES[locale]?.[key] ?? en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name: string) => String(params[name] ?? `{${name}}`));
}

export function formatBytes(locale: Locale, bytes: number): string {
  const units = locale === 'fr' ? ['o', 'Ko', 'Mo', 'Go', 'To'] : ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: i === 0 ? 0 : 1 }).format(v)} ${units[i]}`;
}

export function formatDate(locale: Locale, iso: string): string {
  return new Intl.DateTimeFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
