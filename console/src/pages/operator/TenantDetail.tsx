import { useEffect, useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Button from '@cloudscape-design/components/button';
import FormField from '@cloudscape-design/components/form-field';
import Input from '@cloudscape-design/components/input';
import Select from '@cloudscape-design/components/select';
import Table from '@cloudscape-design/components/table';
import Modal from '@cloudscape-design/components/modal';
import Checkbox from '@cloudscape-design/components/checkbox';
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import Spinner from '@cloudscape-design/components/spinner';
import { api } from '../../api/client';
import type { Tenant, TimelineEvent } from '../../api/types';
import { useAction, useAsync } from '../../lib/useAsync';
import { useRoute } from '../../lib/router';
import ErrorAlert from '../../components/ErrorAlert';
import { formatDate } from '../../lib/format';
import { TIER_NAMES } from '../../lib/tiers';
import { statusType } from './Tenants';

interface Clamp {
  field: string;
  from: unknown;
  to: unknown;
}

function TierChange({ tenant, onChanged }: { tenant: Tenant; onChanged: (t: Tenant) => void }) {
  const [target, setTarget] = useState(tenant.tier);
  const preview = useAsync(
    (signal) =>
      target === tenant.tier ? Promise.resolve(null) : api.post<{ tier: string; clamped: Clamp[] }>(`/v1/tenants/${tenant.tenant_id}/tier-preview`, { tier: target }, { signal }),
    [target, tenant.tier, tenant.tenant_id],
  );
  const change = useAction(async () => {
    const t = await api.patch<Tenant>(`/v1/tenants/${tenant.tenant_id}`, { tier: target });
    onChanged(t);
  });
  const clamped = preview.data?.clamped ?? [];
  return (
    <Container header={<Header variant="h2" description="A lower tier clamps configuration above its bounds, as a new config version.">Tier</Header>}>
      <SpaceBetween size="m">
        <FormField label="New tier">
          <Select selectedOption={{ value: target, label: target }} options={TIER_NAMES.map((t) => ({ value: t, label: t }))} onChange={(e) => setTarget(e.detail.selectedOption.value ?? tenant.tier)} />
        </FormField>
        <ErrorAlert error={preview.error} onRetry={preview.reload} header="The tier change could not be previewed" />
        {target !== tenant.tier && preview.data ? (
          clamped.length ? (
            <Table
              header={<Header variant="h3">What {target} clamps</Header>}
              items={clamped}
              columnDefinitions={[
                { id: 'f', header: 'Field', cell: (c) => c.field },
                { id: 'from', header: 'Now', cell: (c) => JSON.stringify(c.from) },
                { id: 'to', header: `On ${target}`, cell: (c) => JSON.stringify(c.to) },
              ]}
            />
          ) : (
            <Alert type="info">Nothing in the tenant's configuration is clamped by {target}.</Alert>
          )
        ) : null}
        {target !== tenant.tier && preview.loading ? <Spinner /> : null}
        <ErrorAlert error={change.error} onRetry={() => void change.run()} />
        <Button disabled={target === tenant.tier || preview.loading} loading={change.busy} onClick={() => void change.run()}>
          Change tier to {target}
        </Button>
      </SpaceBetween>
    </Container>
  );
}

function Rename({ tenant, onChanged }: { tenant: Tenant; onChanged: (t: Tenant) => void }) {
  const [name, setName] = useState(tenant.name);
  const save = useAction(async () => onChanged(await api.patch<Tenant>(`/v1/tenants/${tenant.tenant_id}`, { name: name.trim() })));
  const fieldError = save.error?.details.find((d) => String(d.field ?? '').endsWith('name'));
  return (
    <FormField
      label="Tenant name"
      errorText={fieldError ? `${save.error?.code}: ${String(fieldError.message)}` : undefined}
      secondaryControl={
        <Button disabled={!name.trim() || name.trim() === tenant.name} loading={save.busy} onClick={() => void save.run()}>
          Rename
        </Button>
      }
    >
      <Input value={name} onChange={(e) => setName(e.detail.value)} />
    </FormField>
  );
}

function DeleteTenant({ tenant, onDeleted }: { tenant: Tenant; onDeleted: (t: Tenant) => void }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState('');
  const [exportFirst, setExportFirst] = useState(false);
  const del = useAction(async () => {
    const t = await api.del<Tenant>(`/v1/tenants/${tenant.tenant_id}`, { export_first: exportFirst });
    setOpen(false);
    onDeleted(t ?? tenant);
  });
  return (
    <>
      <Button onClick={() => setOpen(true)} disabled={tenant.status === 'deleting' || tenant.status === 'deleted'}>
        Delete tenant
      </Button>
      <Modal
        visible={open}
        onDismiss={() => setOpen(false)}
        header="Delete tenant"
        footer={
          <Box float="right">
            <SpaceBetween direction="horizontal" size="xs">
              <Button variant="link" onClick={() => setOpen(false)}>
                Cancel
              </Button>
              <Button variant="primary" disabled={typed !== tenant.name} loading={del.busy} onClick={() => void del.run()}>
                Delete permanently
              </Button>
            </SpaceBetween>
          </Box>
        }
      >
        <SpaceBetween size="m">
          <Alert type="warning">
            Deleting {tenant.name} removes its documents, index, keys, configuration and usage and schedules its encryption key for deletion. This cannot be undone.
          </Alert>
          <Checkbox checked={exportFirst} onChange={(e) => setExportFirst(e.detail.checked)} description="Kept 90 days outside the tenant.">
            Export the tenant's data first
          </Checkbox>
          <FormField label={`Type the tenant's name (${tenant.name}) to confirm`}>
            <Input value={typed} onChange={(e) => setTyped(e.detail.value)} />
          </FormField>
          <ErrorAlert error={del.error} onRetry={() => void del.run()} />
        </SpaceBetween>
      </Modal>
    </>
  );
}

function Receipt({ tenant }: { tenant: Tenant }) {
  const r = tenant.deletion_receipt;
  if (!r) return null;
  return (
    <Container header={<Header variant="h2" description="What was deleted and when: kept on the tenant's tombstone.">Deletion receipt</Header>}>
      <SpaceBetween size="m">
        <KeyValuePairs
          columns={3}
          items={[
            { label: 'Requested', value: formatDate(r.requested_at) },
            { label: 'Completed', value: formatDate(r.completed_at) },
            { label: 'Export kept', value: r.export_key ?? 'none' },
          ]}
        />
        <Table
          items={r.steps}
          variant="embedded"
          columnDefinitions={[
            { id: 's', header: 'Step', cell: (s) => s.step },
            { id: 'c', header: 'Removed', cell: (s) => s.count },
            { id: 't', header: 'Completed', cell: (s) => formatDate(s.completed_at) },
            { id: 'd', header: 'Detail', cell: (s) => s.detail || '—' },
          ]}
        />
        {r.notes?.length ? <Box>{r.notes.join(' ')}</Box> : null}
      </SpaceBetween>
    </Container>
  );
}

export default function TenantDetail() {
  const route = useRoute();
  const id = route.parts[1] ?? '';
  const tenant = useAsync((signal) => api.get<Tenant>(`/v1/tenants/${encodeURIComponent(id)}`, { signal }), [id]);
  const timeline = useAsync((signal) => api.get<{ events: TimelineEvent[] }>(`/v1/tenants/${encodeURIComponent(id)}/timeline`, { signal }), [id]);
  const t = tenant.data;
  // a suspension or resumption is a timeline event too: show it at once
  const suspend = useAction(async () => {
    tenant.setData(await api.post<Tenant>(`/v1/tenants/${id}/suspend`, {}));
    timeline.reload();
  });
  const resume = useAction(async (reason: string) => {
    tenant.setData(await api.post<Tenant>(`/v1/tenants/${id}/resume`, { reason }));
    timeline.reload();
  });

  // A deletion runs in the background: poll until the receipt is there.
  const reloadTenant = tenant.reload;
  const reloadTimeline = timeline.reload;
  useEffect(() => {
    if (t?.status !== 'deleting') return;
    const timer = setInterval(() => {
      reloadTenant();
      reloadTimeline();
    }, 2000);
    return () => clearInterval(timer);
  }, [t?.status, reloadTenant, reloadTimeline]);

  const updated = (next: Tenant) => {
    tenant.setData(next);
    timeline.reload();
  };

  if (!t) {
    return (
      <ContentLayout header={<Header variant="h1">Tenant</Header>}>
        {tenant.loading ? <Spinner size="large" /> : <ErrorAlert error={tenant.error} onRetry={tenant.reload} />}
      </ContentLayout>
    );
  }
  const reasons = t.suspension_reasons ?? [];
  const gone = t.status === 'deleting' || t.status === 'deleted';
  return (
    <ContentLayout
      header={
        <Header
          variant="h1"
          description={`Tenant ${t.tenant_id}`}
          actions={
            gone ? undefined : (
              <SpaceBetween direction="horizontal" size="xs">
                {reasons.includes('operator') ? (
                  <Button loading={resume.busy} onClick={() => void resume.run('operator')}>
                    Resume tenant
                  </Button>
                ) : (
                  <Button loading={suspend.busy} onClick={() => void suspend.run()}>
                    Suspend tenant
                  </Button>
                )}
                {reasons.includes('payment') ? <Button onClick={() => void resume.run('payment')}>Waive failed payment</Button> : null}
                <DeleteTenant tenant={t} onDeleted={updated} />
              </SpaceBetween>
            )
          }
        >
          {t.name}
        </Header>
      }
    >
      <SpaceBetween size="l">
        <ErrorAlert error={suspend.error} onRetry={() => void suspend.run()} />
        <ErrorAlert error={resume.error} />
        <ErrorAlert error={tenant.error} onRetry={tenant.reload} />
        {t.status === 'deleting' ? (
          <Alert type="info" header="Deleting">
            <StatusIndicator type="in-progress">The tenant is being deleted; the receipt appears here when it is done.</StatusIndicator>
          </Alert>
        ) : null}
        <Receipt tenant={t} />
        <Container header={<Header variant="h2">Profile</Header>}>
          <SpaceBetween size="m">
            <KeyValuePairs
              columns={3}
              items={[
                { label: 'Status', value: <StatusIndicator type={statusType(t.status)}>{t.status}</StatusIndicator> },
                { label: 'Tier', value: t.tier },
                { label: 'Suspension reasons', value: reasons.length ? reasons.join(', ') : 'none' },
                { label: 'Created', value: formatDate(t.created_at) },
                { label: 'Updated', value: formatDate(t.updated_at) },
                { label: 'Annual billing', value: t.annual_billing ? 'yes' : 'no' },
              ]}
            />
            {gone ? null : <Rename tenant={t} onChanged={updated} />}
          </SpaceBetween>
        </Container>
        {gone ? null : <TierChange tenant={t} onChanged={updated} />}
        <Table
          header={<Header variant="h2" description="Lifecycle and operator actions, oldest first (never the tenant's data).">Timeline</Header>}
          items={timeline.data?.events ?? []}
          loading={timeline.loading && !timeline.data}
          loadingText="Loading the timeline"
          empty="No events yet."
          columnDefinitions={[
            { id: 'at', header: 'When', cell: (e) => formatDate(e.at) },
            { id: 'kind', header: 'Event', cell: (e) => e.kind },
            { id: 'actor', header: 'By', cell: (e) => e.actor ?? '—' },
            { id: 'detail', header: 'Detail', cell: (e) => e.detail ?? '—' },
          ]}
        />
        <ErrorAlert error={timeline.error} onRetry={timeline.reload} header="The timeline could not be loaded" />
      </SpaceBetween>
    </ContentLayout>
  );
}
