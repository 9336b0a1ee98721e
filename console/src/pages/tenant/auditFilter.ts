import type { AuditEntry } from '../../api/types';

/** Filters audit entries by free text (target, details), actor substring and exact action. */
export function filterAudit(entries: AuditEntry[], f: { text: string; actor: string; action: string }): AuditEntry[] {
  const text = f.text.trim().toLowerCase();
  const actor = f.actor.trim().toLowerCase();
  return entries.filter((e) => {
    if (f.action && e.action !== f.action) return false;
    if (actor && !e.actor.toLowerCase().includes(actor)) return false;
    if (text && !`${e.action} ${e.target ?? ''} ${JSON.stringify(e.details ?? {})}`.toLowerCase().includes(text)) return false;
    return true;
  });
}
