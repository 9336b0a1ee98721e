import { useMemo, useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Table from '@cloudscape-design/components/table';
import Button from '@cloudscape-design/components/button';
import Box from '@cloudscape-design/components/box';
import SpaceBetween from '@cloudscape-design/components/space-between';
import FormField from '@cloudscape-design/components/form-field';
import Input from '@cloudscape-design/components/input';
import Select, { type SelectProps } from '@cloudscape-design/components/select';
import { api } from '../../api/client';
import type { AuditEntry } from '../../api/types';
import { useAction, useAsync } from '../../lib/useAsync';
import { useSession } from '../../shell/session';
import { can } from '../../lib/roles';
import ErrorAlert from '../../components/ErrorAlert';
import RoleNotice from '../../components/RoleNotice';
import { formatDate } from '../../lib/format';
import { filterAudit } from './auditFilter';

type Page = { entries: AuditEntry[]; next_cursor: string | null };
const ANY: SelectProps.Option = { value: '', label: 'Any action' };

export default function Audit() {
  const { role } = useSession();
  const allowed = can(role, 'audit.read');
  const [extra, setExtra] = useState<AuditEntry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [text, setText] = useState('');
  const [actor, setActor] = useState('');
  const [action, setAction] = useState<SelectProps.Option>(ANY);
  const first = useAsync(
    async (signal) => {
      if (!allowed) return [];
      const res = await api.get<Page>('/v1/audit', { query: { limit: 100 }, signal });
      setExtra([]);
      setCursor(res.next_cursor);
      return res.entries;
    },
    [allowed],
  );
  const more = useAction(async () => {
    const res = await api.get<Page>('/v1/audit', { query: { limit: 100, cursor: cursor ?? undefined } });
    setExtra((e) => [...e, ...res.entries]);
    setCursor(res.next_cursor);
  });
  const all = useMemo(() => [...(first.data ?? []), ...extra], [first.data, extra]);
  const actions = useMemo(() => Array.from(new Set(all.map((e) => e.action))).sort(), [all]);
  const items = filterAudit(all, { text, actor, action: action.value ?? '' });

  if (!allowed) {
    return (
      <ContentLayout header={<Header variant="h1">Audit log</Header>}>
        <RoleNotice needed="admin" what="Reading the audit log" />
      </ContentLayout>
    );
  }
  return (
    <ContentLayout header={<Header variant="h1" description="Operator, configuration, key, document and lifecycle actions, newest first.">Audit log</Header>}>
      <SpaceBetween size="m">
        <ErrorAlert error={first.error} onRetry={first.reload} />
        <ErrorAlert error={more.error} onRetry={() => void more.run()} />
        <Table
          items={items}
          loading={first.loading && !first.data}
          loadingText="Loading the audit log"
          trackBy="entry_id"
          wrapLines
          empty="No entries match."
          filter={
            <SpaceBetween direction="horizontal" size="s">
              <FormField label="Search">
                <Input type="search" value={text} onChange={(e) => setText(e.detail.value)} placeholder="Target or details" />
              </FormField>
              <FormField label="Actor">
                <Input value={actor} onChange={(e) => setActor(e.detail.value)} placeholder="admin:k…" />
              </FormField>
              <FormField label="Action">
                <Select selectedOption={action} options={[ANY, ...actions.map((a) => ({ value: a, label: a }))]} onChange={(e) => setAction(e.detail.selectedOption)} />
              </FormField>
            </SpaceBetween>
          }
          header={<Header variant="h2" counter={`(${items.length} of ${all.length}${cursor ? '+' : ''})`}>Entries</Header>}
          columnDefinitions={[
            { id: 'at', header: 'When', cell: (e) => formatDate(e.at) },
            { id: 'actor', header: 'Actor', cell: (e) => e.actor },
            { id: 'action', header: 'Action', cell: (e) => e.action },
            { id: 'target', header: 'Target', cell: (e) => e.target ?? '—' },
            { id: 'd', header: 'Details', cell: (e) => <code>{e.details ? JSON.stringify(e.details) : '—'}</code> },
          ]}
          footer={
            cursor ? (
              <Box textAlign="center">
                <Button loading={more.busy} onClick={() => void more.run()}>
                  Load older entries
                </Button>
              </Box>
            ) : undefined
          }
        />
      </SpaceBetween>
    </ContentLayout>
  );
}
