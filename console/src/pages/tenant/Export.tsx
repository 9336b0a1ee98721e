import { useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import Button from '@cloudscape-design/components/button';
import SpaceBetween from '@cloudscape-design/components/space-between';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import Link from '@cloudscape-design/components/link';
import Box from '@cloudscape-design/components/box';
import { api, newIdempotencyKey } from '../../api/client';
import type { ExportResult } from '../../api/types';
import { useAction } from '../../lib/useAsync';
import { useSession } from '../../shell/session';
import { can } from '../../lib/roles';
import ErrorAlert from '../../components/ErrorAlert';
import RoleNotice from '../../components/RoleNotice';

export default function Export() {
  const { role } = useSession();
  const [result, setResult] = useState<{ r: ExportResult; at: number } | null>(null);
  // The same idempotency key on a retry: a network failure cannot make two bundles.
  const [idem, setIdem] = useState(newIdempotencyKey);
  const run = useAction(async () => {
    const r = await api.post<ExportResult>('/v1/export', {}, { headers: { 'Idempotency-Key': idem } });
    setResult({ r, at: Date.now() });
    setIdem(newIdempotencyKey());
  });
  if (!can(role, 'export')) {
    return (
      <ContentLayout header={<Header variant="h1">Export</Header>}>
        <RoleNotice needed="admin" what="Exporting the tenant's data" />
      </ContentLayout>
    );
  }
  const expires = result ? new Date(result.at + result.r.expires_in * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '';
  return (
    <ContentLayout
      header={
        <Header variant="h1" description="A zip of your documents, chunk metadata, config versions, usage and audit log. Bundles are kept 7 days and count as storage.">
          Export
        </Header>
      }
    >
      <SpaceBetween size="l">
        <Container>
          <SpaceBetween size="m">
            <Button variant="primary" loading={run.busy} onClick={() => void run.run()}>
              Request export
            </Button>
            <ErrorAlert error={run.error} onRetry={() => void run.run()} requiredRole="admin" />
          </SpaceBetween>
        </Container>
        {result ? (
          <Container header={<Header variant="h2">Your export is ready</Header>}>
            <SpaceBetween size="m">
              <Link href={result.r.url} external externalIconAriaLabel="(opens the download)" target="_blank" rel="noopener noreferrer">
                Download the export bundle
              </Link>
              <Box variant="small">The link works until {expires}.</Box>
              <KeyValuePairs
                columns={3}
                items={[
                  { label: 'Bundle', value: result.r.key },
                  ...Object.entries(result.r.manifest)
                    .filter(([, v]) => typeof v !== 'object' || v === null)
                    .map(([k, v]) => ({ label: k, value: String(v) })),
                ]}
              />
            </SpaceBetween>
          </Container>
        ) : null}
      </SpaceBetween>
    </ContentLayout>
  );
}
