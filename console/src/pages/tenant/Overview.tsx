import { useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import ProgressBar from '@cloudscape-design/components/progress-bar';
import SpaceBetween from '@cloudscape-design/components/space-between';
import LineChart from '@cloudscape-design/components/line-chart';
import BarChart from '@cloudscape-design/components/bar-chart';
import Select from '@cloudscape-design/components/select';
import FormField from '@cloudscape-design/components/form-field';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import { api } from '../../api/client';
import type { ConfigView, DailyUsage, DocumentItem, UsageReport } from '../../api/types';
import { useAsync } from '../../lib/useAsync';
import { useSession } from '../../shell/session';
import { can } from '../../lib/roles';
import { tierLimits } from '../../lib/tiers';
import ErrorAlert from '../../components/ErrorAlert';
import RoleNotice from '../../components/RoleNotice';
import { formatBytes, formatUsd, recentPeriods } from '../../lib/format';
import { gauge, type Gauge } from './gauges';

async function countDocuments(signal: AbortSignal): Promise<{ count: number; complete: boolean }> {
  let count = 0;
  let cursor: string | null = null;
  for (let i = 0; i < 20; i++) {
    const page: { documents: DocumentItem[]; next_cursor: string | null } = await api.get('/v1/documents', { query: { limit: 100, cursor: cursor ?? undefined }, signal });
    count += page.documents.filter((d) => d.status !== 'failed' && d.status !== 'deleting').length;
    cursor = page.next_cursor;
    if (!cursor) return { count, complete: true };
  }
  return { count, complete: false };
}

function GaugeView({ g }: { g: Gauge }) {
  return (
    <ProgressBar
      label={g.label}
      value={g.percent}
      description={g.limitText}
      additionalInfo={g.note}
      status={g.percent >= 100 ? 'error' : 'in-progress'}
      resultText={`${g.usedText} of ${g.limitText}`}
      ariaLabel={`${g.label}: ${g.usedText} of ${g.limitText}`}
    />
  );
}

export default function Overview() {
  const { me, role } = useSession();
  const admin = can(role, 'usage.read');
  const periods = recentPeriods(6);
  const [period, setPeriod] = useState(periods[0]);
  const limits = tierLimits(me?.tier);
  const usage = useAsync((signal) => (admin ? api.get<UsageReport>('/v1/usage', { query: { period }, signal }) : Promise.resolve(null)), [admin, period]);
  const daily = useAsync(
    (signal) => (admin ? api.get<{ period: string; days: DailyUsage[] }>('/v1/usage/daily', { query: { period }, signal }) : Promise.resolve(null)),
    [admin, period],
  );
  const config = useAsync((signal) => api.get<ConfigView>('/v1/config', { signal }), []);
  const docs = useAsync((signal) => countDocuments(signal), []);

  const own = config.data?.config.limits;
  const u = usage.data;
  const gauges: Gauge[] = [];
  if (limits) {
    if (u) gauges.push(gauge('Queries this month', u.queries, Math.min(limits.monthly_queries, own?.monthly_queries ?? Infinity), (n) => n.toLocaleString('en-US')));
    if (docs.data) gauges.push(gauge('Documents', docs.data.count, limits.max_documents, (n) => `${n.toLocaleString('en-US')}${docs.data?.complete ? '' : '+'}`));
    if (u && u.stored_bytes !== undefined) gauges.push(gauge('Storage', u.stored_bytes, limits.max_storage_bytes, formatBytes));
    if (u) gauges.push(gauge('LLM budget this month', u.cost_usd, Math.min(limits.monthly_llm_budget_usd, own?.monthly_cost_usd ?? Infinity), (n) => formatUsd(n, 2)));
  }
  const days = daily.data?.days ?? [];
  const x = (d: DailyUsage) => d.date.slice(5);

  return (
    <ContentLayout
      header={
        <Header variant="h1" description={`${me?.tenant_name ?? ''} · tier ${me?.tier ?? '—'} · configuration version ${config.data?.version ?? '—'}`}>
          Overview
        </Header>
      }
    >
      <SpaceBetween size="l">
        <FormField label="Month">
          <Select selectedOption={{ value: period, label: period }} options={periods.map((p) => ({ value: p, label: p }))} onChange={(e) => setPeriod(e.detail.selectedOption.value ?? periods[0])} />
        </FormField>
        {!admin ? <RoleNotice needed="admin" what="Usage, quotas and daily charts" /> : null}
        <ErrorAlert error={usage.error} onRetry={usage.reload} requiredRole="admin" />
        <ErrorAlert error={docs.error} onRetry={docs.reload} />
        <ErrorAlert error={config.error} onRetry={config.reload} />
        <Container header={<Header variant="h2" description={`Against the ${me?.tier ?? ''} tier's limits (and your own lower caps).`}>Quotas</Header>}>
          <ColumnLayout columns={2}>
            {gauges.map((g) => (
              <GaugeView key={g.label} g={g} />
            ))}
          </ColumnLayout>
        </Container>
        {admin && u ? (
          <Container header={<Header variant="h2">This month</Header>}>
            <KeyValuePairs
              columns={4}
              items={[
                { label: 'Queries', value: u.queries.toLocaleString('en-US') },
                { label: 'Searches', value: u.searches.toLocaleString('en-US') },
                { label: 'Tokens', value: (u.prompt_tokens + u.completion_tokens).toLocaleString('en-US') },
                { label: 'LLM cost', value: formatUsd(u.cost_usd) },
                { label: 'API calls', value: u.api_calls.toLocaleString('en-US') },
                { label: 'Bytes ingested', value: formatBytes(u.bytes_ingested) },
                { label: 'Storage (GB-months)', value: Number(u.storage_gb).toFixed(3) },
                { label: 'Documents indexed', value: u.documents_indexed.toLocaleString('en-US') },
              ]}
            />
          </Container>
        ) : null}
        {admin ? (
          <>
            <ErrorAlert error={daily.error} onRetry={daily.reload} header="The daily series could not be loaded" />
            <ColumnLayout columns={2}>
              <Container header={<Header variant="h2">Queries per day</Header>}>
                <LineChart
                  series={[
                    { title: 'Queries', type: 'line', data: days.map((d) => ({ x: x(d), y: d.queries })) },
                    { title: 'Searches', type: 'line', data: days.map((d) => ({ x: x(d), y: d.searches })) },
                  ]}
                  xScaleType="categorical"
                  height={220}
                  hideFilter
                  statusType={daily.loading ? 'loading' : daily.error ? 'error' : 'finished'}
                  empty="No data for this month."
                  xTitle="Day"
                  yTitle="Count"
                  ariaLabel="Queries and searches per day"
                />
              </Container>
              <Container header={<Header variant="h2">Tokens per day</Header>}>
                <BarChart
                  series={[
                    { title: 'Prompt tokens', type: 'bar', data: days.map((d) => ({ x: d.date.slice(5), y: d.prompt_tokens })) },
                    { title: 'Completion tokens', type: 'bar', data: days.map((d) => ({ x: d.date.slice(5), y: d.completion_tokens })) },
                  ]}
                  stackedBars
                  xScaleType="categorical"
                  height={220}
                  hideFilter
                  statusType={daily.loading ? 'loading' : daily.error ? 'error' : 'finished'}
                  empty="No data for this month."
                  xTitle="Day"
                  yTitle="Tokens"
                  ariaLabel="Tokens per day"
                />
              </Container>
              <Container header={<Header variant="h2">LLM cost per day</Header>}>
                <LineChart
                  series={[{ title: 'Cost (USD)', type: 'line', data: days.map((d) => ({ x: x(d), y: d.cost_usd })), valueFormatter: (v) => formatUsd(v) }]}
                  xScaleType="categorical"
                  height={220}
                  hideFilter
                  statusType={daily.loading ? 'loading' : daily.error ? 'error' : 'finished'}
                  empty="No data for this month."
                  xTitle="Day"
                  yTitle="USD"
                  ariaLabel="LLM cost per day"
                />
              </Container>
            </ColumnLayout>
          </>
        ) : null}
      </SpaceBetween>
    </ContentLayout>
  );
}
