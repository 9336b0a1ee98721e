// The tiers' limits come from the platform's one source, lambdas/raas/data/tiers.json, bundled at
// build time (the API has no public route for them); the quota gauges and the wizard read them.
import tiersFile from '../../../lambdas/raas/data/tiers.json';

export interface TierLimits {
  allowed_models: string[];
  max_top_k: number;
  max_tokens: number;
  reranking: boolean;
  max_api_keys: number;
  max_documents: number;
  max_storage_bytes: number;
  max_document_bytes: number;
  monthly_queries: number;
  rate_limit_rps: number;
  burst: number;
  query_history_days: number;
  monthly_llm_budget_usd: number;
  [key: string]: unknown;
}

export const TIERS = (tiersFile as unknown as { tiers: Record<string, TierLimits> }).tiers;
export const TIER_NAMES = Object.keys(TIERS);

export function tierLimits(tier: string | null | undefined): TierLimits | null {
  return tier && TIERS[tier] ? TIERS[tier] : null;
}
