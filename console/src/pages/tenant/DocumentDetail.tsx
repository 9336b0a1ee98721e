import { useEffect, useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import Table from '@cloudscape-design/components/table';
import Button from '@cloudscape-design/components/button';
import SpaceBetween from '@cloudscape-design/components/space-between';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import Box from '@cloudscape-design/components/box';
import Spinner from '@cloudscape-design/components/spinner';
import { api } from '../../api/client';
import type { Chunk, DocumentItem } from '../../api/types';
import { useAction, useAsync } from '../../lib/useAsync';
import { useRoute, navigate } from '../../lib/router';
import { useSession } from '../../shell/session';
import { can } from '../../lib/roles';
import ErrorAlert from '../../components/ErrorAlert';
import { formatBytes, formatDate } from '../../lib/format';
import { docStatusType } from './Documents';

export default function DocumentDetail() {
  const route = useRoute();
  const { role } = useSession();
  const id = route.parts[1] ?? '';
  const doc = useAsync((signal) => api.get<DocumentItem>(`/v1/documents/${encodeURIComponent(id)}`, { signal }), [id]);
  const [chunks, setChunks] = useState<Chunk[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const first = useAsync(
    async (signal) => {
      const res = await api.get<{ chunks: Chunk[]; next_cursor: string | null }>(`/v1/documents/${encodeURIComponent(id)}/chunks`, { query: { limit: 50 }, signal });
      setChunks(res.chunks);
      setCursor(res.next_cursor);
      return res;
    },
    [id, doc.data?.status],
  );
  const more = useAction(async () => {
    const res = await api.get<{ chunks: Chunk[]; next_cursor: string | null }>(`/v1/documents/${encodeURIComponent(id)}/chunks`, { query: { limit: 50, cursor: cursor ?? undefined } });
    setChunks((c) => [...c, ...res.chunks]);
    setCursor(res.next_cursor);
  });
  const del = useAction(async () => {
    await api.del(`/v1/documents/${encodeURIComponent(id)}`);
    navigate('/documents');
  });
  const d = doc.data;
  const reload = doc.reload;
  useEffect(() => {
    if (!d || !['queued', 'processing', 'deleting'].includes(d.status)) return;
    const t = setInterval(reload, 1500);
    return () => clearInterval(t);
  }, [d, reload]);

  return (
    <ContentLayout
      header={
        <Header
          variant="h1"
          description={id}
          actions={
            can(role, 'documents.write') && d ? (
              <Button loading={del.busy} onClick={() => void del.run()}>
                Delete document
              </Button>
            ) : undefined
          }
        >
          {d?.title || 'Document'}
        </Header>
      }
    >
      <SpaceBetween size="l">
        <ErrorAlert error={doc.error} onRetry={reload} />
        <ErrorAlert error={del.error} onRetry={() => void del.run()} requiredRole="editor" />
        {!d && doc.loading ? <Spinner size="large" /> : null}
        {d ? (
          <Container header={<Header variant="h2">Details</Header>}>
            <KeyValuePairs
              columns={3}
              items={[
                { label: 'Status', value: <StatusIndicator type={docStatusType(d.status)}>{d.status}</StatusIndicator> },
                { label: 'Failure reason', value: d.error ?? '—' },
                { label: 'Chunks', value: d.chunk_count },
                { label: 'Size', value: formatBytes(d.size_bytes) },
                { label: 'Type', value: d.content_type },
                { label: 'File name', value: d.filename ?? '—' },
                { label: 'Added', value: formatDate(d.created_at) },
                { label: 'Indexed', value: formatDate(d.indexed_at) },
                { label: 'Metadata', value: <code>{JSON.stringify(d.metadata ?? {})}</code> },
              ]}
            />
          </Container>
        ) : null}
        <ErrorAlert error={first.error} onRetry={first.reload} header="The chunks could not be loaded" />
        <Table
          header={<Header variant="h2">Chunks</Header>}
          items={chunks}
          loading={first.loading && !chunks.length}
          loadingText="Loading chunks"
          trackBy="chunk_id"
          empty={d?.status === 'indexed' ? 'No chunks.' : 'Chunks appear once the document is indexed.'}
          wrapLines
          columnDefinitions={[
            { id: 'o', header: '#', cell: (c) => c.ordinal },
            { id: 't', header: 'Text', cell: (c) => <span className="pre-wrap">{c.text}</span> },
          ]}
          footer={
            cursor ? (
              <Box textAlign="center">
                <Button loading={more.busy} onClick={() => void more.run()}>
                  Load more chunks
                </Button>
              </Box>
            ) : undefined
          }
        />
      </SpaceBetween>
    </ContentLayout>
  );
}
