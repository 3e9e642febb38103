// Who is calling, as the host tells it. Roles as in BlueMind: manageDataProtect (settings, backups, every restore),
// manageRestore (restores), the latter possibly held for some organisational units only.

export type Role = 'manageDataProtect' | 'manageRestore';

export interface Principal {
  uid: string;
  login: string;
  displayName: string;
  email: string | null;
  domainUid: string;
  /** A global administrator holds every role everywhere. */
  globalAdmin: boolean;
  /** Roles held for the whole installation (or the caller's whole domain). */
  roles: Role[];
  /** Organisational units (uids) where manageRestore is held, when it is not held globally. */
  restoreOrgUnits: string[];
}

export const SCHEDULER_ACTOR = 'scheduler';

export function holdsRole(p: Principal, role: Role): boolean {
  if (p.globalAdmin || p.roles.includes('manageDataProtect')) return true;
  if (role === 'manageRestore') return p.roles.includes('manageRestore') || p.restoreOrgUnits.length > 0;
  return p.roles.includes(role);
}

/** True when the caller may restore any entity (not limited to organisational units). */
export function restoresEverywhere(p: Principal): boolean {
  return p.globalAdmin || p.roles.includes('manageDataProtect') || p.roles.includes('manageRestore');
}

/**
 * Whether an entity is within the caller's restore scope: everywhere, or in the caller's domain and under one of
 * the organisational units where they hold manageRestore (BlueMind's DPService rule).
 */
export function entityInRestoreScope(p: Principal, entity: { domainUid: string; orgUnitPath?: string[] }): boolean {
  if (restoresEverywhere(p)) return true;
  if (entity.domainUid !== p.domainUid) return false;
  return (entity.orgUnitPath ?? []).some((ou) => p.restoreOrgUnits.includes(ou));
}
