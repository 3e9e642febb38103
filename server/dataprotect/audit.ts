import { inject, injectable } from 'tsyringe';
import { AuditStore, type AuditEvent, type AuditEventInput, type AuditQuery } from '../store/audit-store.js';

export type { AuditEvent, AuditEventInput, AuditQuery } from '../store/audit-store.js';

/** Who did what, to what, from which generation, when, with what result. Every restore ends here. */
@injectable()
export class AuditLog {
  constructor(@inject(AuditStore) private readonly store: AuditStore) {}

  record(event: AuditEventInput): Promise<AuditEvent> {
    return this.store.insert(event);
  }

  list(q: AuditQuery): Promise<{ total: number; offset: number; items: AuditEvent[] }> {
    return this.store.list(q);
  }
}
