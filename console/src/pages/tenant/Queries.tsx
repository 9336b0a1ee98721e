import { useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Table from '@cloudscape-design/components/table';
import Button from '@cloudscape-design/components/button';
import Box from '@cloudscape-design/components/box';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Link from '@cloudscape-design/components/link';
import ExpandableSection from '@cloudscape-design/components/expandable-section';
import { api } from '../../api/client';
import type { QueryHistoryEntry } from '../../api/types';
import { useAction, useAsync } from '../../lib/useAsync';
import ErrorAlert from '../../components/ErrorAlert';
import { formatDate, formatUsd } from '../../lib/format';

type Page = { queries: QueryHistoryEntry[]; next_cursor: string | null };

export default function Queries() {
  const [extra, setExtra] = useState<QueryHistoryEntry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const first = useAsync(async (signal) => {
    const res = await api.get<Page>('/v1/queries', { query: { limit: 50 }, signal });
    setExtra([]);
    setCursor(res.next_cursor);
    return res.queries;
  }, []);
  const more = useAction(async () => {
    const res = await api.get<Page>('/v1/queries', { query: { limit: 50, cursor: cursor ?? undefined } });
    setExtra((e) => [...e, ...res.queries]);
    setCursor(res.next_cursor);
  });
  const items = [...(first.data ?? []), ...extra];
  return (
    <ContentLayout header={<Header variant="h1" description="Newest first, kept for your tier's retention.">Query history</Header>}>
      <SpaceBetween size="m">
        <ErrorAlert error={first.error} onRetry={first.reload} />
        <ErrorAlert error={more.error} onRetry={() => void more.run()} />
        <Table
          items={items}
          loading={first.loading && !first.data}
          loadingText="Loading queries"
          trackBy="query_id"
          wrapLines
          empty="No queries yet: try the Playground."
          columnDefinitions={[
            { id: 'at', header: 'When', cell: (q) => formatDate(q.at) },
            { id: 'q', header: 'Question', cell: (q) => q.query },
            {
              id: 'a',
              header: 'Answer',
              cell: (q) => (
                <ExpandableSection headerText={q.answer.length > 80 ? `${q.answer.slice(0, 80)}…` : q.answer || '—'} variant="footer">
                  <span className="pre-wrap">{q.answer}</span>
                </ExpandableSection>
              ),
            },
            {
              id: 'c',
              header: 'Cited',
              cell: (q) =>
                q.citations.length ? (
                  <SpaceBetween size="xxxs">
                    {q.citations.map((d) => (
                      <Link key={d} href={`#/documents/${encodeURIComponent(d)}`}>
                        {d}
                      </Link>
                    ))}
                  </SpaceBetween>
                ) : (
                  '—'
                ),
            },
            { id: 'm', header: 'Model', cell: (q) => `${q.model}${q.cached ? ' (cached)' : ''}` },
            { id: 't', header: 'Tokens', cell: (q) => q.usage.prompt_tokens + q.usage.completion_tokens },
            { id: 'cost', header: 'Cost', cell: (q) => formatUsd(q.usage.cost_usd, 6) },
            { id: 'l', header: 'Latency', cell: (q) => `${q.latency_ms.toFixed(0)} ms` },
          ]}
          footer={
            cursor ? (
              <Box textAlign="center">
                <Button loading={more.busy} onClick={() => void more.run()}>
                  Load older queries
                </Button>
              </Box>
            ) : undefined
          }
        />
      </SpaceBetween>
    </ContentLayout>
  );
}
