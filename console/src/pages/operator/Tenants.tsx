import { useEffect, useMemo, useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Table from '@cloudscape-design/components/table';
import Pagination from '@cloudscape-design/components/pagination';
import Select, { type SelectProps } from '@cloudscape-design/components/select';
import Input from '@cloudscape-design/components/input';
import FormField from '@cloudscape-design/components/form-field';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Button from '@cloudscape-design/components/button';
import Link from '@cloudscape-design/components/link';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import { api, fetchAllPages } from '../../api/client';
import type { OperatorUsageRow, Tenant } from '../../api/types';
import { useAsync } from '../../lib/useAsync';
import ErrorAlert from '../../components/ErrorAlert';
import { currentPeriod, formatDate, formatUsd } from '../../lib/format';
import { navigate } from '../../lib/router';

const PAGE_SIZE = 20;
const STATUS: SelectProps.Option[] = [{ value: '', label: 'Any status' }, ...['active', 'provisioning', 'suspended', 'deleting', 'deleted'].map((s) => ({ value: s, label: s }))];
const TIER: SelectProps.Option[] = [{ value: '', label: 'Any tier' }, ...['free', 'smb', 'midmarket', 'enterprise'].map((s) => ({ value: s, label: s }))];

export function statusType(status: string): 'success' | 'warning' | 'error' | 'in-progress' | 'stopped' {
  if (status === 'active') return 'success';
  if (status === 'suspended') return 'warning';
  if (status === 'provisioning' || status === 'deleting') return 'in-progress';
  if (status === 'deleted') return 'stopped';
  return 'error';
}

export default function Tenants() {
  const [status, setStatus] = useState<SelectProps.Option>(STATUS[0]);
  const [tier, setTier] = useState<SelectProps.Option>(TIER[0]);
  const [search, setSearch] = useState('');
  const [q, setQ] = useState('');
  // Cursor paging: cursors[i] is the cursor that loads page i+1 (the first page has none).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [pageIndex, setPageIndex] = useState(1);

  useEffect(() => {
    const t = setTimeout(() => setQ(search.trim()), 300);
    return () => clearTimeout(t);
  }, [search]);

  useEffect(() => {
    setCursors([null]);
    setPageIndex(1);
  }, [status.value, tier.value, q]);

  const page = useAsync(
    (signal) =>
      api.get<{ tenants: Tenant[]; next_cursor: string | null }>('/v1/tenants', {
        query: { status: status.value, tier: tier.value, q, limit: PAGE_SIZE, cursor: cursors[pageIndex - 1] ?? undefined },
        signal,
      }),
    [status.value, tier.value, q, pageIndex, cursors[pageIndex - 1]],
  );

  const usage = useAsync(() => fetchAllPages<OperatorUsageRow>('/v1/operator/usage', 'tenants', { period: currentPeriod(), limit: 100 }), []);
  const usageById = useMemo(() => new Map((usage.data?.items ?? []).map((r) => [r.tenant_id, r.usage])), [usage.data]);

  useEffect(() => {
    const next = page.data?.next_cursor ?? null;
    if (next && cursors.length === pageIndex) setCursors((c) => [...c, next]);
  }, [page.data, pageIndex, cursors.length]);

  const items = page.data?.tenants ?? [];
  return (
    <ContentLayout
      header={
        <Header
          variant="h1"
          description={`Every tenant, with this month's (${currentPeriod()}) usage.`}
          actions={
            <Button variant="primary" onClick={() => navigate('/tenants/new')}>
              Create tenant
            </Button>
          }
        >
          Tenants
        </Header>
      }
    >
      <SpaceBetween size="m">
        <ErrorAlert error={page.error} onRetry={page.reload} />
        <ErrorAlert error={usage.error} onRetry={usage.reload} header="This month's usage could not be loaded" />
        <Table
          wrapLines
          variant="full-page"
          items={items}
          loading={page.loading}
          loadingText="Loading tenants"
          trackBy="tenant_id"
          empty="No tenants match."
          filter={
            <SpaceBetween direction="horizontal" size="s">
              <FormField label="Search by name">
                <Input type="search" value={search} onChange={(e) => setSearch(e.detail.value)} placeholder="Name contains" />
              </FormField>
              <FormField label="Status">
                <Select selectedOption={status} options={STATUS} onChange={(e) => setStatus(e.detail.selectedOption)} />
              </FormField>
              <FormField label="Tier">
                <Select selectedOption={tier} options={TIER} onChange={(e) => setTier(e.detail.selectedOption)} />
              </FormField>
            </SpaceBetween>
          }
          pagination={
            <Pagination
              currentPageIndex={pageIndex}
              pagesCount={cursors.length}
              openEnd={Boolean(page.data?.next_cursor)}
              onChange={(e) => setPageIndex(e.detail.currentPageIndex)}
              ariaLabels={{ nextPageLabel: 'Next page', previousPageLabel: 'Previous page', pageLabel: (n) => `Page ${n}` }}
            />
          }
          columnDefinitions={[
            { id: 'name', header: 'Name', cell: (t) => <Link href={`#/tenants/${encodeURIComponent(t.tenant_id)}`}>{t.name}</Link> },
            { id: 'tier', header: 'Tier', cell: (t) => t.tier },
            { id: 'status', header: 'Status', cell: (t) => <StatusIndicator type={statusType(t.status)}>{t.status}</StatusIndicator> },
            { id: 'queries', header: 'Queries (month)', cell: (t) => usageById.get(t.tenant_id)?.queries ?? 0 },
            { id: 'storage', header: 'Storage (GB-months)', cell: (t) => Number(usageById.get(t.tenant_id)?.storage_gb ?? 0).toFixed(3) },
            { id: 'cost', header: 'LLM cost (month)', cell: (t) => formatUsd(usageById.get(t.tenant_id)?.cost_usd ?? 0) },
            { id: 'created', header: 'Created', cell: (t) => formatDate(t.created_at) },
          ]}
        />
      </SpaceBetween>
    </ContentLayout>
  );
}
