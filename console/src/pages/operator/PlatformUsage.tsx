import { useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import Table from '@cloudscape-design/components/table';
import Select from '@cloudscape-design/components/select';
import FormField from '@cloudscape-design/components/form-field';
import Button from '@cloudscape-design/components/button';
import SpaceBetween from '@cloudscape-design/components/space-between';
import BarChart from '@cloudscape-design/components/bar-chart';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import Alert from '@cloudscape-design/components/alert';
import Link from '@cloudscape-design/components/link';
import { fetchAllPages } from '../../api/client';
import type { OperatorUsageRow } from '../../api/types';
import { useAsync } from '../../lib/useAsync';
import ErrorAlert from '../../components/ErrorAlert';
import { downloadText } from '../../lib/csv';
import { formatBytes, formatUsd, recentPeriods } from '../../lib/format';
import { usageCsv } from './usageCsv';

export default function PlatformUsage() {
  const periods = recentPeriods(12);
  const [period, setPeriod] = useState(periods[0]);
  const usage = useAsync(() => fetchAllPages<OperatorUsageRow>('/v1/operator/usage', 'tenants', { period, limit: 100 }, 50), [period]);
  const rows = usage.data?.items ?? [];
  const top = [...rows].sort((a, b) => b.usage.queries - a.usage.queries).slice(0, 15);
  const totals = rows.reduce(
    (acc, r) => ({
      queries: acc.queries + r.usage.queries,
      cost: acc.cost + r.usage.cost_usd,
      api: acc.api + r.usage.api_calls,
      bytes: acc.bytes + r.usage.bytes_ingested,
    }),
    { queries: 0, cost: 0, api: 0, bytes: 0 },
  );
  return (
    <ContentLayout
      header={
        <Header
          variant="h1"
          description="Every tenant's usage for a month."
          actions={
            <Button iconName="download" disabled={!rows.length} onClick={() => downloadText(`raas-usage-${period}.csv`, usageCsv(rows))}>
              Download CSV
            </Button>
          }
        >
          Platform usage
        </Header>
      }
    >
      <SpaceBetween size="l">
        <FormField label="Month">
          <Select selectedOption={{ value: period, label: period }} options={periods.map((p) => ({ value: p, label: p }))} onChange={(e) => setPeriod(e.detail.selectedOption.value ?? periods[0])} />
        </FormField>
        <ErrorAlert error={usage.error} onRetry={usage.reload} />
        {usage.data && !usage.data.complete ? <Alert type="warning">Only the first 5,000 tenants are shown.</Alert> : null}
        <Container header={<Header variant="h2">Totals for {period}</Header>}>
          <KeyValuePairs
            columns={4}
            items={[
              { label: 'Queries', value: totals.queries.toLocaleString('en-US') },
              { label: 'LLM cost', value: formatUsd(totals.cost) },
              { label: 'API calls', value: totals.api.toLocaleString('en-US') },
              { label: 'Bytes ingested', value: formatBytes(totals.bytes) },
            ]}
          />
        </Container>
        <Container header={<Header variant="h2">Queries by tenant (top 15)</Header>}>
          <BarChart
            series={[{ title: 'Queries', type: 'bar', data: top.map((r) => ({ x: r.name, y: r.usage.queries })) }]}
            xScaleType="categorical"
            height={260}
            hideFilter
            statusType={usage.loading ? 'loading' : 'finished'}
            empty="No usage this month."
            xTitle="Tenant"
            yTitle="Queries"
            ariaLabel="Queries by tenant"
          />
        </Container>
        <Table
          wrapLines
          header={<Header variant="h2" counter={`(${rows.length})`}>Tenants</Header>}
          items={rows}
          loading={usage.loading}
          loadingText="Loading usage"
          trackBy="tenant_id"
          empty="No tenants."
          columnDefinitions={[
            { id: 'n', header: 'Tenant', cell: (r) => <Link href={`#/tenants/${r.tenant_id}`}>{r.name}</Link> },
            { id: 't', header: 'Tier', cell: (r) => r.tier },
            { id: 's', header: 'Status', cell: (r) => r.status },
            { id: 'q', header: 'Queries', cell: (r) => r.usage.queries },
            { id: 'se', header: 'Searches', cell: (r) => r.usage.searches },
            { id: 'tok', header: 'Tokens', cell: (r) => r.usage.prompt_tokens + r.usage.completion_tokens },
            { id: 'c', header: 'LLM cost', cell: (r) => formatUsd(r.usage.cost_usd) },
            { id: 'st', header: 'Storage (GB-months)', cell: (r) => Number(r.usage.storage_gb).toFixed(3) },
            { id: 'a', header: 'API calls', cell: (r) => r.usage.api_calls },
          ]}
        />
      </SpaceBetween>
    </ContentLayout>
  );
}
