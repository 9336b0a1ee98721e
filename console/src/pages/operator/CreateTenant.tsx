import { useState } from 'react';
import Wizard from '@cloudscape-design/components/wizard';
import Container from '@cloudscape-design/components/container';
import Header from '@cloudscape-design/components/header';
import FormField from '@cloudscape-design/components/form-field';
import Input from '@cloudscape-design/components/input';
import Tiles from '@cloudscape-design/components/tiles';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import Button from '@cloudscape-design/components/button';
import CopyToClipboard from '@cloudscape-design/components/copy-to-clipboard';
import ContentLayout from '@cloudscape-design/components/content-layout';
import { api, newIdempotencyKey } from '../../api/client';
import type { Tenant } from '../../api/types';
import { asApiError, fieldErrors, type ApiError } from '../../api/errors';
import ErrorAlert from '../../components/ErrorAlert';
import { TIERS, TIER_NAMES } from '../../lib/tiers';
import { formatBytes } from '../../lib/format';
import { navigate } from '../../lib/router';

function tierSummary(name: string): string {
  const t = TIERS[name];
  if (!t) return '';
  return `${t.monthly_queries.toLocaleString('en-US')} queries/month, ${t.max_documents.toLocaleString('en-US')} documents, ${formatBytes(t.max_storage_bytes)} storage, top_k ≤ ${t.max_top_k}${t.reranking ? ', reranking' : ''}`;
}

export default function CreateTenant() {
  const [step, setStep] = useState(0);
  const [name, setName] = useState('');
  const [tier, setTier] = useState('smb');
  const [nameError, setNameError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  // One idempotency key per wizard: a retry after a network failure cannot create a second tenant.
  const [idemKey] = useState(newIdempotencyKey);
  const [created, setCreated] = useState<{ tenant: Tenant; api_key: string } | null>(null);

  async function submit() {
    setBusy(true);
    setError(null);
    try {
      const res = await api.post<{ tenant: Tenant; api_key: string }>('/v1/tenants', { name: name.trim(), tier }, { headers: { 'Idempotency-Key': idemKey } });
      setCreated(res);
    } catch (e) {
      const err = asApiError(e);
      setError(err);
      const fe = fieldErrors(err);
      if (fe.name) {
        setNameError(fe.name);
        setStep(0);
      }
    } finally {
      setBusy(false);
    }
  }

  if (created) {
    return (
      <ContentLayout header={<Header variant="h1">Create tenant</Header>}>
        <Container header={<Header variant="h2">Tenant {created.tenant.name} created</Header>}>
          <SpaceBetween size="m">
            <Alert type="warning" header="Copy the admin key now">
              This is the tenant's first admin key. It is shown once and cannot be shown again: raas keeps only its hash. Give it to the tenant's administrator over a
              secure channel.
            </Alert>
            <FormField label="Admin API key">
              <SpaceBetween direction="horizontal" size="xs" alignItems="center">
                <Box variant="code">
                  <span data-testid="admin-key">{created.api_key}</span>
                </Box>
                <CopyToClipboard
                  variant="button"
                  textToCopy={created.api_key}
                  copyButtonText="Copy key"
                  copySuccessText="Key copied"
                  copyErrorText="Could not copy: select the key and copy it yourself"
                />
              </SpaceBetween>
            </FormField>
            <KeyValuePairs
              columns={3}
              items={[
                { label: 'Tenant id', value: created.tenant.tenant_id },
                { label: 'Tier', value: created.tenant.tier },
                { label: 'Status', value: created.tenant.status },
              ]}
            />
            <SpaceBetween direction="horizontal" size="xs">
              <Button onClick={() => navigate(`/tenants/${created.tenant.tenant_id}`)}>Open tenant</Button>
              <Button onClick={() => navigate('/tenants')}>Back to tenants</Button>
            </SpaceBetween>
          </SpaceBetween>
        </Container>
      </ContentLayout>
    );
  }

  return (
    <ContentLayout header={<Header variant="h1" description="Name the tenant, choose its tier, review, and get its first admin key.">Create tenant</Header>}>
    <Wizard
      activeStepIndex={step}
      isLoadingNextStep={busy}
      onNavigate={(e) => {
        if (e.detail.requestedStepIndex > 0 && !name.trim()) {
          setNameError('A name is required');
          return;
        }
        if (name.trim().length > 200) {
          setNameError('At most 200 characters');
          return;
        }
        setNameError(undefined);
        setStep(e.detail.requestedStepIndex);
      }}
      onCancel={() => navigate('/tenants')}
      onSubmit={() => void submit()}
      submitButtonText="Create tenant"
      i18nStrings={{
        stepNumberLabel: (n) => `Step ${n}`,
        collapsedStepsLabel: (n, total) => `Step ${n} of ${total}`,
        navigationAriaLabel: 'Steps',
        cancelButton: 'Cancel',
        previousButton: 'Previous',
        nextButton: 'Next',
        optional: 'optional',
      }}
      steps={[
        {
          title: 'Tenant details',
          description: 'Name the customer. You can rename it later.',
          content: (
            <Container>
              <FormField label="Tenant name" errorText={nameError} constraintText="1–200 characters">
                <Input value={name} onChange={(e) => setName(e.detail.value)} />
              </FormField>
            </Container>
          ),
        },
        {
          title: 'Choose a tier',
          description: 'The tier sets models, limits and quotas.',
          content: (
            <Container header={<Header variant="h2">Tier</Header>}>
              <FormField label="Tier">
                <Tiles value={tier} onChange={(e) => setTier(e.detail.value)} items={TIER_NAMES.map((t) => ({ value: t, label: t, description: tierSummary(t) }))} />
              </FormField>
            </Container>
          ),
        },
        {
          title: 'Review and create',
          content: (
            <SpaceBetween size="m">
              <Container header={<Header variant="h2">Review</Header>}>
                <KeyValuePairs
                  columns={2}
                  items={[
                    { label: 'Name', value: name },
                    { label: 'Tier', value: `${tier} — ${tierSummary(tier)}` },
                  ]}
                />
              </Container>
              <ErrorAlert error={error} onRetry={() => void submit()} />
            </SpaceBetween>
          ),
        },
      ]}
    />
    </ContentLayout>
  );
}
