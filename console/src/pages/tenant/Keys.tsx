import { useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Table from '@cloudscape-design/components/table';
import Button from '@cloudscape-design/components/button';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Container from '@cloudscape-design/components/container';
import FormField from '@cloudscape-design/components/form-field';
import Input from '@cloudscape-design/components/input';
import Select from '@cloudscape-design/components/select';
import Modal from '@cloudscape-design/components/modal';
import Box from '@cloudscape-design/components/box';
import Alert from '@cloudscape-design/components/alert';
import CopyToClipboard from '@cloudscape-design/components/copy-to-clipboard';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import { api } from '../../api/client';
import type { ApiKey } from '../../api/types';
import { fieldErrors } from '../../api/errors';
import { useAction, useAsync } from '../../lib/useAsync';
import { useSession } from '../../shell/session';
import { can } from '../../lib/roles';
import ErrorAlert from '../../components/ErrorAlert';
import RoleNotice from '../../components/RoleNotice';
import { formatDate } from '../../lib/format';

const ROLES = ['reader', 'editor', 'admin'];

export function isLastAdmin(key: ApiKey, keys: ApiKey[]): boolean {
  return key.role === 'admin' && !key.revoked_at && keys.filter((k) => k.role === 'admin' && !k.revoked_at).length === 1;
}

export default function Keys() {
  const { role, me } = useSession();
  const allowed = can(role, 'keys.manage');
  const keys = useAsync((signal) => (allowed ? api.get<{ keys: ApiKey[] }>('/v1/keys', { signal }) : Promise.resolve({ keys: [] })), [allowed]);
  const [name, setName] = useState('');
  const [newRole, setNewRole] = useState<string | null>(null);
  const [created, setCreated] = useState<{ key: ApiKey; api_key: string } | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const create = useAction(async () => {
    const res = await api.post<{ key: ApiKey; api_key: string }>('/v1/keys', { name: name.trim(), role: newRole });
    setCreated(res);
    setName('');
    keys.reload();
  });
  const revoke = useAction(async (k: ApiKey) => {
    await api.del(`/v1/keys/${encodeURIComponent(k.key_id)}`);
    setRevoking(null);
    keys.reload();
  });

  if (!allowed) {
    return (
      <ContentLayout header={<Header variant="h1">API keys</Header>}>
        <RoleNotice needed="admin" what="Managing API keys" />
      </ContentLayout>
    );
  }
  const list = keys.data?.keys ?? [];
  const fe = fieldErrors(create.error);
  return (
    <ContentLayout header={<Header variant="h1" description="Keys are shown once when created; raas keeps only a hash and a visible prefix.">API keys</Header>}>
      <SpaceBetween size="l">
        {created ? (
          <Alert type="warning" header={`Key "${created.key.name}" created — copy it now`} dismissible onDismiss={() => setCreated(null)}>
            <SpaceBetween size="xs">
              <Box>This key ({created.key.role}) is shown once and cannot be shown again.</Box>
              <SpaceBetween direction="horizontal" size="xs" alignItems="center">
                <Box variant="code">
                  <span data-testid="new-api-key">{created.api_key}</span>
                </Box>
                <CopyToClipboard variant="button" textToCopy={created.api_key} copyButtonText="Copy key" copySuccessText="Key copied" copyErrorText="Could not copy" />
              </SpaceBetween>
            </SpaceBetween>
          </Alert>
        ) : null}
        <Container header={<Header variant="h2">Create a key</Header>}>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void create.run();
            }}
          >
            <SpaceBetween size="m">
              <SpaceBetween direction="horizontal" size="m">
                <FormField label="Key name" errorText={fe.name}>
                  <Input value={name} onChange={(e) => setName(e.detail.value)} placeholder="ci pipeline" />
                </FormField>
                <FormField label="Role" errorText={fe.role}>
                  <Select
                    selectedOption={newRole ? { value: newRole, label: newRole } : null}
                    placeholder="Choose a role"
                    options={ROLES.map((r) => ({ value: r, label: r }))}
                    onChange={(e) => setNewRole(e.detail.selectedOption.value ?? null)}
                  />
                </FormField>
              </SpaceBetween>
              <ErrorAlert error={create.error} onRetry={() => void create.run()} />
              <Button variant="primary" loading={create.busy} disabled={!name.trim() || !newRole}>
                Create key
              </Button>
            </SpaceBetween>
          </form>
        </Container>
        <ErrorAlert error={keys.error} onRetry={keys.reload} />
        <Table
          wrapLines
          header={<Header variant="h2" counter={`(${list.filter((k) => !k.revoked_at).length} active)`}>Keys</Header>}
          items={list}
          loading={keys.loading && !keys.data}
          loadingText="Loading keys"
          trackBy="key_id"
          columnDefinitions={[
            { id: 'n', header: 'Name', cell: (k) => `${k.name}${k.key_id === me?.key_id ? ' (this key)' : ''}` },
            { id: 'p', header: 'Prefix', cell: (k) => <code>{k.prefix}…</code> },
            { id: 'r', header: 'Role', cell: (k) => k.role },
            { id: 'c', header: 'Created', cell: (k) => formatDate(k.created_at) },
            { id: 'u', header: 'Last used', cell: (k) => (k.last_used_at ? formatDate(k.last_used_at) : 'never') },
            {
              id: 's',
              header: 'Status',
              cell: (k) => (k.revoked_at ? <StatusIndicator type="stopped">revoked {formatDate(k.revoked_at)}</StatusIndicator> : <StatusIndicator type="success">active</StatusIndicator>),
            },
            {
              id: 'a',
              header: 'Revoke',
              cell: (k) =>
                k.revoked_at ? (
                  '—'
                ) : isLastAdmin(k, list) ? (
                  <Box variant="small">The last admin key cannot be revoked: create another admin key first.</Box>
                ) : (
                  <Button onClick={() => setRevoking(k)} ariaLabel={`Revoke ${k.name}`}>
                    Revoke
                  </Button>
                ),
            },
          ]}
        />
      </SpaceBetween>
      <Modal
        visible={revoking !== null}
        onDismiss={() => setRevoking(null)}
        header="Revoke key?"
        footer={
          <Box float="right">
            <SpaceBetween direction="horizontal" size="xs">
              <Button variant="link" onClick={() => setRevoking(null)}>
                Cancel
              </Button>
              <Button variant="primary" loading={revoke.busy} onClick={() => revoking && void revoke.run(revoking)}>
                Revoke key
              </Button>
            </SpaceBetween>
          </Box>
        }
      >
        <SpaceBetween size="s">
          <Box>
            Requests with "{revoking?.name}" ({revoking?.prefix}…) are refused from the next request on.{' '}
            {revoking?.key_id === me?.key_id ? 'This is the key you are signed in with: you will be signed out.' : ''}
          </Box>
          {revoke.error?.code === 'last_admin_key' ? (
            <Alert type="error" header="This is the last admin key">
              {revoke.error.code}: {revoke.error.message}. A tenant always keeps one admin key so that it can manage itself.
            </Alert>
          ) : (
            <ErrorAlert error={revoke.error} onRetry={() => revoking && void revoke.run(revoking)} />
          )}
        </SpaceBetween>
      </Modal>
    </ContentLayout>
  );
}
