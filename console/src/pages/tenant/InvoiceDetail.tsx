import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import Table from '@cloudscape-design/components/table';
import Button from '@cloudscape-design/components/button';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Box from '@cloudscape-design/components/box';
import Spinner from '@cloudscape-design/components/spinner';
import { api } from '../../api/client';
import type { Invoice } from '../../api/types';
import { useAsync } from '../../lib/useAsync';
import { useRoute } from '../../lib/router';
import { useSession } from '../../shell/session';
import ErrorAlert from '../../components/ErrorAlert';
import { formatCents, formatDate, formatMillicents } from '../../lib/format';

/** One invoice; the print stylesheet hides the navigation so the browser prints just the invoice. */
export default function InvoiceDetail() {
  const route = useRoute();
  const { me } = useSession();
  const period = route.parts[1] ?? '';
  const inv = useAsync((signal) => api.get<Invoice>(`/v1/invoices/${encodeURIComponent(period)}`, { signal }), [period]);
  const i = inv.data;
  return (
    <div className="printable">
      <ContentLayout
        header={
          <Header
            variant="h1"
            description={me?.tenant_name ?? undefined}
            actions={
              <div className="no-print">
                <Button iconName="file" onClick={() => window.print()}>
                  Print
                </Button>
              </div>
            }
          >
            Invoice {period}
          </Header>
        }
      >
        <SpaceBetween size="l">
          <div className="no-print">
            <ErrorAlert error={inv.error} onRetry={inv.reload} requiredRole="admin" />
          </div>
          {!i && inv.loading ? <Spinner size="large" /> : null}
          {i ? (
            <>
              <Container header={<Header variant="h2">Summary</Header>}>
                <KeyValuePairs
                  columns={4}
                  items={[
                    { label: 'Tenant', value: `${me?.tenant_name ?? ''} (${i.tenant_id})` },
                    { label: 'Period', value: i.period },
                    { label: 'Tier', value: `${i.tier}${i.annual ? ', annual billing' : ''}` },
                    { label: 'Status', value: i.status === 'paid' ? `paid ${formatDate(i.paid_at)}` : 'open' },
                    { label: 'Issued', value: formatDate(i.issued_at) },
                    { label: 'Payment reference', value: i.payment_reference ?? '—' },
                    { label: 'Currency', value: i.currency.toUpperCase() },
                  ]}
                />
              </Container>
              <Table
                header={<Header variant="h2">Lines</Header>}
                items={i.lines}
                wrapLines
                columnDefinitions={[
                  { id: 'd', header: 'Description', cell: (l) => l.description },
                  { id: 'q', header: 'Quantity', cell: (l) => l.quantity },
                  { id: 'u', header: 'Unit price', cell: (l) => formatMillicents(l.unit_price_millicents) },
                  { id: 'a', header: 'Amount', cell: (l) => formatCents(l.amount_cents, i.currency) },
                ]}
                footer={
                  <Box textAlign="right">
                    <SpaceBetween size="xxs">
                      <div>Subtotal: {formatCents(i.subtotal_cents, i.currency)}</div>
                      <div>Discount: {formatCents(i.discount_cents, i.currency)}</div>
                      <Box variant="h3" tagOverride="p">
                        Total: {formatCents(i.total_cents, i.currency)}
                      </Box>
                    </SpaceBetween>
                  </Box>
                }
              />
            </>
          ) : null}
        </SpaceBetween>
      </ContentLayout>
    </div>
  );
}
