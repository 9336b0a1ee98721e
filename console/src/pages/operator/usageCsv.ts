import type { OperatorUsageRow } from '../../api/types';
import { toCsv } from '../../lib/csv';

export const USAGE_CSV_HEADER = [
  'period',
  'tenant_id',
  'name',
  'tier',
  'status',
  'queries',
  'searches',
  'prompt_tokens',
  'completion_tokens',
  'cost_usd',
  'storage_gb',
  'api_calls',
  'bytes_ingested',
  'documents_indexed',
];

/** The platform usage table as CSV, one row per tenant. */
export function usageCsv(rows: OperatorUsageRow[]): string {
  return toCsv(
    USAGE_CSV_HEADER,
    rows.map((r) => [
      r.usage.period,
      r.tenant_id,
      r.name,
      r.tier,
      r.status,
      r.usage.queries,
      r.usage.searches,
      r.usage.prompt_tokens,
      r.usage.completion_tokens,
      r.usage.cost_usd,
      String(r.usage.storage_gb),
      r.usage.api_calls,
      r.usage.bytes_ingested,
      r.usage.documents_indexed,
    ]),
  );
}
