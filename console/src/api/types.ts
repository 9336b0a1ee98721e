// Shapes of the API's answers (README "HTTP API" and the console contract).

export type Role = 'operator' | 'admin' | 'editor' | 'reader';
export type Tier = 'free' | 'smb' | 'midmarket' | 'enterprise';

export interface Branding {
  primary_color?: string | null;
  secondary_color?: string | null;
  logo_url?: string | null;
}

export interface Me {
  role: Role;
  tenant_id: string | null;
  tenant_name: string | null;
  tier: string | null;
  key_id: string;
  key_name: string | null;
  branding: Branding | null;
}

export interface DeletionStep {
  step: string;
  count: number;
  completed_at: string;
  detail?: string;
}

export interface DeletionReceipt {
  tenant_id: string;
  requested_at: string;
  completed_at: string;
  steps: DeletionStep[];
  export_key?: string | null;
  notes?: string[];
}

export interface Tenant {
  tenant_id: string;
  name: string;
  tier: string;
  status: string;
  created_at: string;
  updated_at: string;
  annual_billing: boolean;
  suspension_reasons: string[];
  deletion_requested_at: string | null;
  deletion_receipt: DeletionReceipt | null;
}

export interface UsageReport {
  period: string;
  queries: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  bytes_ingested: number;
  storage_gb: string | number;
  api_calls: number;
  searches: number;
  documents_indexed: number;
  stored_bytes?: number;
  export_bytes?: number;
  exports?: number;
}

export interface OperatorUsageRow {
  tenant_id: string;
  name: string;
  tier: string;
  status: string;
  usage: UsageReport;
}

export interface DailyUsage {
  date: string;
  queries: number;
  searches: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  api_calls: number;
  bytes_ingested: number;
}

export interface TimelineEvent {
  at: string;
  kind: string;
  actor: string | null;
  detail: string | null;
}

export interface TenantConfig {
  model: string;
  temperature: number;
  top_k: number;
  alpha: number;
  max_tokens: number;
  enable_reranking: boolean;
  prompt_template: string;
  prompt_variables: Record<string, string>;
  branding: Branding;
  chunking: { strategy: string; size: number; overlap: number };
  limits: { monthly_queries: number | null; monthly_cost_usd: number | null; requests_per_second: number | null };
  [key: string]: unknown;
}

export interface ConfigView {
  tenant_id: string;
  version: number;
  config: TenantConfig;
  updated_at: string;
  updated_by: string;
}

export interface VersionSummary {
  version: number;
  created_at: string;
  created_by: string;
  mode: string;
  changed_fields: string[];
  rolled_back_from: number | null;
}

export interface ApiKey {
  key_id: string;
  name: string;
  role: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface DocumentItem {
  document_id: string;
  title: string;
  content_type: string;
  size_bytes: number;
  status: string;
  metadata: Record<string, unknown>;
  source_uri: string | null;
  filename: string | null;
  chunk_count: number;
  error: string | null;
  created_at: string;
  updated_at: string;
  indexed_at: string | null;
}

export interface UploadTicket {
  document_id: string;
  status: string;
  upload_url: string;
  method: string;
  headers: Record<string, string>;
  expires_at: string;
}

export interface Chunk {
  chunk_id: string;
  ordinal: number;
  text: string;
}

export interface Citation {
  document_id: string;
  chunk_id: string;
  title: string;
  score: number;
  snippet: string;
  metadata?: Record<string, unknown>;
}

export interface QueryUsage {
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
}

export interface QueryResult {
  query_id?: string;
  answer: string;
  citations: Citation[];
  model: string;
  offline: boolean;
  config_version: number;
  usage: QueryUsage;
  retrieval?: { top_k: number; alpha: number; reranked: boolean; screened_out: number };
  cached: boolean;
  latency_ms: number;
  timings?: Record<string, number>;
}

export interface QueryHistoryEntry {
  query_id: string;
  at: string;
  query: string;
  answer: string;
  model: string;
  citations: string[];
  usage: QueryUsage;
  latency_ms: number;
  cached: boolean;
}

export interface PriceLine {
  description: string;
  quantity: string;
  unit_price_millicents: number;
  amount_cents: number;
}

export interface Quote {
  tier: string;
  currency: string;
  annual: boolean;
  lines: PriceLine[];
  subtotal_cents: number;
  discount_cents: number;
  total_cents: number;
  custom_contract: boolean;
}

export interface Invoice extends Quote {
  tenant_id: string;
  period: string;
  issued_at: string;
  status: 'open' | 'paid';
  paid_at: string | null;
  payment_reference: string | null;
}

export interface AuditEntry {
  entry_id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown> | null;
}

export interface ExportResult {
  key: string;
  url: string;
  expires_in: number;
  manifest: Record<string, unknown>;
}
