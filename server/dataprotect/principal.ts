// Who is calling, as the host tells it. Roles as in BlueMind: manageDataProtect (backups and every restore of a
// domain), manageRestore (restores of a domain), the latter possibly held for some organisational units only.
// Roles are held in the caller's domain; held in the global domain (global.virt) they reach every domain, and
// only a global domain's manageDataProtect (or a global administrator) does what concerns the whole installation.

export type Role = 'manageDataProtect' | 'manageRestore';

/** BlueMind's global domain: its administrators run the installation (admin0@global.virt). */
export const GLOBAL_DOMAIN = 'global.virt';

export interface Principal {
  uid: string;
  login: string;
  displayName: string;
  email: string | null;
  domainUid: string;
  /** A global administrator holds every role everywhere. */
  globalAdmin: boolean;
  /** Roles held for the caller's whole domain (every domain when it is the global domain). */
  roles: Role[];
  /** Organisational units (uids) where manageRestore is held, when it is not held for the whole domain. */
  restoreOrgUnits: string[];
}

export const SCHEDULER_ACTOR = 'scheduler';

/** Whether the caller holds a role somewhere (in some domain or unit): the gate of an operation's x-dp-roles. */
export function holdsRole(p: Principal, role: Role): boolean {
  if (p.globalAdmin || p.roles.includes('manageDataProtect')) return true;
  if (role === 'manageRestore') return p.roles.includes('manageRestore') || p.restoreOrgUnits.length > 0;
  return p.roles.includes(role);
}

/**
 * Installation-wide work: settings, backup runs, forget, sync, retention, global restore, the audit log and
 * everyone's tasks. A domain's manageDataProtect manages its own domain's restores, not the installation.
 */
export function managesInstallation(p: Principal): boolean {
  return p.globalAdmin || (p.domainUid === GLOBAL_DOMAIN && p.roles.includes('manageDataProtect'));
}

/** Whether the caller's roles reach a domain: their own, or every one from the global domain. */
export function reachesDomain(p: Principal, domainUid: string): boolean {
  return p.globalAdmin || p.domainUid === GLOBAL_DOMAIN || p.domainUid === domainUid;
}

/** True when the caller may restore any entity of the domains they reach (not limited to organisational units). */
export function restoresWholeDomain(p: Principal): boolean {
  return p.globalAdmin || p.roles.includes('manageDataProtect') || p.roles.includes('manageRestore');
}

/**
 * Whether an entity is within the caller's restore scope: in a domain their roles reach, and there anywhere or
 * under one of the organisational units where they hold manageRestore (BlueMind's DPService rule).
 */
export function entityInRestoreScope(p: Principal, entity: { domainUid: string; orgUnitPath?: string[] }): boolean {
  if (!reachesDomain(p, entity.domainUid)) return false;
  if (restoresWholeDomain(p)) return true;
  return (entity.orgUnitPath ?? []).some((ou) => p.restoreOrgUnits.includes(ou));
}
