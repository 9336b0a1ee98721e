import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Table from '@cloudscape-design/components/table';
import Link from '@cloudscape-design/components/link';
import SpaceBetween from '@cloudscape-design/components/space-between';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import { api, fetchAllPages } from '../../api/client';
import type { Invoice, UsageReport } from '../../api/types';
import { useAsync } from '../../lib/useAsync';
import { useSession } from '../../shell/session';
import { can } from '../../lib/roles';
import ErrorAlert from '../../components/ErrorAlert';
import RoleNotice from '../../components/RoleNotice';
import { currentPeriod, formatCents, formatDate } from '../../lib/format';
import Box from '@cloudscape-design/components/box';

export default function Invoices() {
  const { role } = useSession();
  const allowed = can(role, 'invoices.read');
  const list = useAsync(() => (allowed ? fetchAllPages<Invoice>('/v1/invoices', 'invoices', { limit: 24 }, 5) : Promise.resolve({ items: [], complete: true })), [allowed]);
  const usage = useAsync((signal) => (allowed ? api.get<UsageReport>('/v1/usage', { signal }) : Promise.resolve(null)), [allowed]);
  if (!allowed) {
    return (
      <ContentLayout header={<Header variant="h1">Invoices</Header>}>
        <RoleNotice needed="admin" what="Reading invoices" />
      </ContentLayout>
    );
  }
  return (
    <ContentLayout header={<Header variant="h1" description="Issued once a month for the month just closed.">Invoices</Header>}>
      <SpaceBetween size="m">
        <ErrorAlert error={list.error} onRetry={list.reload} />
        {usage.data ? (
          <Box>
            This month so far ({currentPeriod()}): {usage.data.queries.toLocaleString('en-US')} queries, {usage.data.api_calls.toLocaleString('en-US')} API calls — invoiced after the
            month closes.
          </Box>
        ) : null}
        <Table
          items={list.data?.items ?? []}
          loading={list.loading}
          loadingText="Loading invoices"
          trackBy="period"
          empty="No invoices yet: the first is issued after your first full month."
          columnDefinitions={[
            { id: 'p', header: 'Month', cell: (i) => <Link href={`#/invoices/${i.period}`}>{i.period}</Link> },
            { id: 't', header: 'Tier', cell: (i) => `${i.tier}${i.annual ? ' (annual)' : ''}` },
            { id: 'tot', header: 'Total', cell: (i) => formatCents(i.total_cents, i.currency) },
            { id: 's', header: 'Status', cell: (i) => <StatusIndicator type={i.status === 'paid' ? 'success' : 'pending'}>{i.status}</StatusIndicator> },
            { id: 'at', header: 'Issued', cell: (i) => formatDate(i.issued_at) },
          ]}
        />
      </SpaceBetween>
    </ContentLayout>
  );
}
