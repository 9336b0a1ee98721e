import type { ConfigView, TenantConfig } from '../api/types';

// Versions are immutable, so every whole configuration the console receives (GET /v1/config, a save,
// a rollback, GET /v1/config/versions/{n}) is kept in memory for this tab, keyed by tenant and version:
// a diff fetches each version once. Never persisted; cleared at sign-out.
const seen = new Map<string, TenantConfig>();

export function rememberConfig(view: ConfigView | null | undefined): void {
  if (view && view.config) seen.set(`${view.tenant_id}#${view.version}`, view.config);
}

export function recalledConfig(tenantId: string | null | undefined, version: number): TenantConfig | undefined {
  return tenantId ? seen.get(`${tenantId}#${version}`) : undefined;
}

export function forgetConfigs(): void {
  seen.clear();
}
