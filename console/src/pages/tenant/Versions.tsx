import { useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Table from '@cloudscape-design/components/table';
import Button from '@cloudscape-design/components/button';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Select from '@cloudscape-design/components/select';
import FormField from '@cloudscape-design/components/form-field';
import Container from '@cloudscape-design/components/container';
import Alert from '@cloudscape-design/components/alert';
import Toggle from '@cloudscape-design/components/toggle';
import Box from '@cloudscape-design/components/box';
import { api } from '../../api/client';
import type { ConfigView, TenantConfig, VersionSummary } from '../../api/types';
import { ApiError, asApiError } from '../../api/errors';
import { useAction, useAsync } from '../../lib/useAsync';
import { useSession } from '../../shell/session';
import { can } from '../../lib/roles';
import ErrorAlert from '../../components/ErrorAlert';
import { diffConfigs, lineDiff } from '../../lib/diff';
import { formatDate } from '../../lib/format';
import { recalledConfig, rememberConfig } from '../../lib/versionCache';

interface VersionDetail {
  version: number;
  config: TenantConfig;
}

/**
 * A version's whole config: the current one from GET /v1/config, any other from
 * GET /v1/config/versions/{n} (0 = the defaults).
 */
async function loadVersion(n: number, current: ConfigView | null, signal: AbortSignal): Promise<VersionDetail> {
  if (current && current.version === n) return { version: n, config: current.config };
  const known = recalledConfig(current?.tenant_id, n);
  if (known) return { version: n, config: known };
  const detail = await api.get<VersionDetail>(`/v1/config/versions/${n}`, { signal });
  if (current) rememberConfig({ tenant_id: current.tenant_id, version: n, config: detail.config, updated_at: '', updated_by: '' });
  return detail;
}

function DiffView({ left, right, versions, current }: { left: number; right: number; versions: VersionSummary[]; current: ConfigView | null }) {
  const [onlyChanges, setOnlyChanges] = useState(true);
  const detail = useAsync(async (signal) => Promise.all([loadVersion(left, current, signal), loadVersion(right, current, signal)]), [left, right, current?.version]);
  if (detail.error) {
    // A version that cannot be read (e.g. 404 version_not_found): the history still says which fields changed.
    const between = versions.filter((v) => v.version > Math.min(left, right) && v.version <= Math.max(left, right));
    const fields = Array.from(new Set(between.flatMap((v) => v.changed_fields))).sort();
    return (
      <SpaceBetween size="s">
        <ErrorAlert error={detail.error} onRetry={detail.reload} header="The versions' contents could not be loaded" />
        {detail.error.status === 404 ? (
          <Alert type="info" header={`Fields changed between v${Math.min(left, right)} and v${Math.max(left, right)}`}>
            {fields.length ? fields.join(', ') : 'none'}
          </Alert>
        ) : null}
      </SpaceBetween>
    );
  }
  if (!detail.data) return <Box>Loading…</Box>;
  const [a, b] = detail.data;
  const rows = diffConfigs(a.config, b.config, { onlyChanges });
  const templateChanged = a.config.prompt_template !== b.config.prompt_template;
  return (
    <SpaceBetween size="m">
      <Toggle checked={onlyChanges} onChange={(e) => setOnlyChanges(e.detail.checked)}>
        Only changed fields
      </Toggle>
      <Table
        variant="embedded"
        items={rows.filter((r) => r.path !== 'prompt_template' || !templateChanged)}
        empty="The two versions are identical."
        columnDefinitions={[
          { id: 'f', header: 'Field', cell: (r) => r.path },
          { id: 'l', header: `v${left}`, cell: (r) => <span className={r.kind === 'same' ? undefined : 'diff-removed pre-wrap'}>{r.left || '—'}</span> },
          { id: 'r', header: `v${right}`, cell: (r) => <span className={r.kind === 'same' ? undefined : 'diff-added pre-wrap'}>{r.right || '—'}</span> },
          { id: 'k', header: 'Change', cell: (r) => r.kind },
        ]}
      />
      {templateChanged ? (
        <Container header={<Header variant="h3">Prompt template (line by line)</Header>}>
          <div className="pre-wrap" role="group" aria-label="Prompt template diff">
            {lineDiff(a.config.prompt_template, b.config.prompt_template).map((l, i) => (
              <div key={i} className={l.kind === 'same' ? undefined : l.kind === 'added' ? 'diff-added' : 'diff-removed'}>
                {l.kind === 'added' ? '+ ' : l.kind === 'removed' ? '- ' : '  '}
                {l.text}
              </div>
            ))}
          </div>
        </Container>
      ) : null}
    </SpaceBetween>
  );
}

export default function Versions() {
  const { role, refreshMe } = useSession();
  const canRollback = can(role, 'versions.rollback');
  const [extra, setExtra] = useState<VersionSummary[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const current = useAsync(async (signal) => {
    const view = await api.get<ConfigView>('/v1/config', { signal });
    rememberConfig(view);
    return view;
  }, []);
  const list = useAsync(
    async (signal) => {
      const res = await api.get<{ versions: VersionSummary[]; next_cursor: string | null }>('/v1/config/versions', { query: { limit: 50 }, signal });
      setExtra([]);
      setCursor(res.next_cursor);
      return res.versions;
    },
    [],
  );
  const more = useAction(async () => {
    const res = await api.get<{ versions: VersionSummary[]; next_cursor: string | null }>('/v1/config/versions', { query: { limit: 50, cursor: cursor ?? undefined } });
    setExtra((e) => [...e, ...res.versions]);
    setCursor(res.next_cursor);
  });
  const [message, setMessage] = useState<string | null>(null);
  const [rollbackError, setRollbackError] = useState<ApiError | null>(null);
  const [busyVersion, setBusyVersion] = useState<number | null>(null);

  const versions = [...(list.data ?? []), ...extra];
  const numbers = [...versions.map((v) => v.version), 0];
  const [left, setLeft] = useState<number | null>(null);
  const [right, setRight] = useState<number | null>(null);
  const l = left ?? (numbers.length > 1 ? numbers[1] : 0);
  const r = right ?? numbers[0] ?? 0;

  async function rollback(version: number) {
    setBusyVersion(version);
    setRollbackError(null);
    try {
      const res = await api.post<ConfigView>('/v1/config/rollback', { version });
      rememberConfig(res);
      setMessage(`Restored version ${version} as version ${res.version}.`);
      current.setData(res);
      list.reload();
      void refreshMe();
    } catch (e) {
      setRollbackError(asApiError(e));
    } finally {
      setBusyVersion(null);
    }
  }

  // Labels carry the mode and fields ("v2 (merge: top_k)") so a version is recognisable in the list.
  const opt = (n: number) => {
    const v = versions.find((x) => x.version === n);
    const what = v ? `${v.mode}${v.changed_fields.length ? `: ${v.changed_fields.join(', ')}` : ''}` : 'defaults';
    return { value: String(n), label: `v${n} (${what})` };
  };
  return (
    <ContentLayout header={<Header variant="h1" description={`Every change is a version. Current: v${current.data?.version ?? '—'}.`}>Versions</Header>}>
      <SpaceBetween size="l">
        {message ? (
          <Alert type="success" dismissible onDismiss={() => setMessage(null)}>
            {message}
          </Alert>
        ) : null}
        <ErrorAlert error={rollbackError} onRetry={busyVersion === null ? undefined : () => void rollback(busyVersion)} requiredRole="admin" />
        <ErrorAlert error={list.error} onRetry={list.reload} />
        <Table
          header={<Header variant="h2">History</Header>}
          items={versions}
          loading={list.loading && !list.data}
          loadingText="Loading versions"
          trackBy="version"
          empty="No changes yet: the defaults (v0) are in use."
          columnDefinitions={[
            { id: 'v', header: 'Version', cell: (v) => `v${v.version}` },
            { id: 'at', header: 'When', cell: (v) => formatDate(v.created_at) },
            { id: 'by', header: 'By', cell: (v) => v.created_by },
            {
              id: 'change',
              header: 'Change (mode: fields)',
              cell: (v) => `${v.mode}${v.rolled_back_from !== null ? ` from v${v.rolled_back_from}` : ''}: ${v.changed_fields.join(', ') || 'no field changed'}`,
            },
            ...(canRollback
              ? [
                  {
                    id: 'rb',
                    header: 'Rollback',
                    cell: (v: VersionSummary) =>
                      v.version === current.data?.version ? (
                        'current'
                      ) : (
                        <Button loading={busyVersion === v.version} disabled={busyVersion !== null} onClick={() => void rollback(v.version)} ariaLabel={`Roll back to v${v.version}`}>
                          Roll back to v{v.version}
                        </Button>
                      ),
                  },
                ]
              : []),
          ]}
          footer={
            cursor ? (
              <Box textAlign="center">
                <Button loading={more.busy} onClick={() => void more.run()}>
                  Load older versions
                </Button>
              </Box>
            ) : undefined
          }
        />
        {canRollback ? (
          <Button loading={busyVersion === 0} disabled={busyVersion !== null} onClick={() => void rollback(0)}>
            Restore the defaults (v0)
          </Button>
        ) : null}
        <Container header={<Header variant="h2" description="Pick any two versions to compare side by side.">Compare versions</Header>}>
          <SpaceBetween size="m">
            <SpaceBetween direction="horizontal" size="m">
              <FormField label="From version">
                <Select
                  selectedOption={left === null ? null : opt(left)}
                  placeholder={`Previous: v${l}`}
                  options={numbers.map(opt)}
                  onChange={(e) => setLeft(Number(e.detail.selectedOption.value))}
                />
              </FormField>
              <FormField label="To version">
                <Select
                  selectedOption={right === null ? null : opt(right)}
                  placeholder={`Latest: v${r}`}
                  options={numbers.map(opt)}
                  onChange={(e) => setRight(Number(e.detail.selectedOption.value))}
                />
              </FormField>
            </SpaceBetween>
            {list.data ? <DiffView left={l} right={r} versions={versions} current={current.data} /> : null}
          </SpaceBetween>
        </Container>
      </SpaceBetween>
    </ContentLayout>
  );
}
