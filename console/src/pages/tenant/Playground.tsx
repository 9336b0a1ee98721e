import { useMemo, useRef, useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import SpaceBetween from '@cloudscape-design/components/space-between';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import FormField from '@cloudscape-design/components/form-field';
import Textarea from '@cloudscape-design/components/textarea';
import Input from '@cloudscape-design/components/input';
import Toggle from '@cloudscape-design/components/toggle';
import Slider from '@cloudscape-design/components/slider';
import Button from '@cloudscape-design/components/button';
import Table from '@cloudscape-design/components/table';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import Link from '@cloudscape-design/components/link';
import Box from '@cloudscape-design/components/box';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import SegmentedControl from '@cloudscape-design/components/segmented-control';
import { api, newIdempotencyKey } from '../../api/client';
import type { Citation, ConfigView } from '../../api/types';
import { asApiError, fieldErrors, type ApiError } from '../../api/errors';
import { useAsync } from '../../lib/useAsync';
import ErrorAlert from '../../components/ErrorAlert';
import { fieldsFromSchema, type JsonSchema } from '../../lib/schemaForm';
import { EMPTY_STREAM, streamQuery, type StreamState } from '../../lib/stream';
import { formatUsd } from '../../lib/format';

function CitationsTable({ citations, title }: { citations: Citation[]; title: string }) {
  return (
    <Table
      header={<Header variant="h2" counter={`(${citations.length})`}>{title}</Header>}
      items={citations}
      trackBy="chunk_id"
      wrapLines
      empty="Nothing retrieved."
      columnDefinitions={[
        { id: 'n', header: '#', cell: (c) => citations.indexOf(c) + 1 },
        { id: 't', header: 'Document', cell: (c) => <Link href={`#/documents/${encodeURIComponent(c.document_id)}`}>{c.title || c.document_id}</Link> },
        { id: 's', header: 'Score', cell: (c) => c.score.toFixed(4) },
        { id: 'sn', header: 'Snippet', cell: (c) => c.snippet },
      ]}
    />
  );
}

export default function Playground() {
  const schema = useAsync((signal) => api.get<{ tier: string; schema: JsonSchema }>('/v1/config/schema', { signal }), []);
  const config = useAsync((signal) => api.get<ConfigView>('/v1/config', { signal }), []);
  const bounds = useMemo(() => {
    const fields = schema.data ? fieldsFromSchema(schema.data.schema) : [];
    const f = (p: string) => fields.find((x) => x.path === p);
    const topK = f('top_k');
    const rerank = f('enable_reranking');
    return {
      maxTopK: topK?.maximum ?? 20,
      minTopK: topK?.minimum ?? 1,
      rerankAllowed: !(rerank?.options && rerank.options.length === 1 && rerank.options[0] === 'false'),
    };
  }, [schema.data]);

  const [question, setQuestion] = useState('');
  const [mode, setMode] = useState<'answer' | 'search'>('answer');
  const [override, setOverride] = useState(false);
  const [topK, setTopK] = useState<number | null>(null);
  const [alpha, setAlpha] = useState<number | null>(null);
  const [rerank, setRerank] = useState<boolean | null>(null);
  const [result, setResult] = useState<StreamState | null>(null);
  const [search, setSearch] = useState<{ results: Citation[]; config_version?: number } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [running, setRunning] = useState(false);
  const abort = useRef<AbortController | null>(null);

  const cfg = config.data?.config;
  const k = topK ?? Math.min(cfg?.top_k ?? 5, bounds.maxTopK);
  const a = alpha ?? cfg?.alpha ?? 0.5;
  const rr = rerank ?? cfg?.enable_reranking ?? false;

  async function run() {
    if (!question.trim()) return;
    abort.current?.abort();
    const ctl = new AbortController();
    abort.current = ctl;
    setRunning(true);
    setError(null);
    const body: Record<string, unknown> = { query: question.trim() };
    if (override) Object.assign(body, { top_k: k, alpha: a, rerank: rr });
    try {
      if (mode === 'search') {
        setResult(null);
        setSearch(await api.post('/v1/search', body, { signal: ctl.signal, headers: { 'Idempotency-Key': newIdempotencyKey() } }));
      } else {
        setSearch(null);
        setResult({ ...EMPTY_STREAM });
        const final = await streamQuery(body, setResult, ctl.signal);
        if (final.error) setError(final.error);
      }
    } catch (e) {
      if (!(e instanceof DOMException && e.name === 'AbortError')) setError(asApiError(e));
    } finally {
      setRunning(false);
    }
  }

  const fe = fieldErrors(error);
  const t = result?.timings ?? {};
  const known = (t.embedding_ms ?? 0) + (t.generation_ms ?? 0);
  return (
    <ContentLayout header={<Header variant="h1" description="Ask your documents a question, as your users' applications do.">Playground</Header>}>
      <SpaceBetween size="l">
        <Container>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void run();
            }}
          >
            <SpaceBetween size="m">
              <FormField label="Question" errorText={fe.query}>
                <Textarea
                  value={question}
                  onChange={(e) => setQuestion(e.detail.value)}
                  rows={3}
                  placeholder="How long do customers have to ask for a refund?"
                  onKeyDown={(e) => {
                    if (e.detail.key === 'Enter' && (e.detail.ctrlKey || e.detail.metaKey)) void run();
                  }}
                />
              </FormField>
              <FormField label="Mode">
                <SegmentedControl
                  selectedId={mode}
                  onChange={(e) => setMode(e.detail.selectedId as 'answer' | 'search')}
                  label="Mode"
                  options={[
                    { id: 'answer', text: 'Answer (streamed)' },
                    { id: 'search', text: 'Search only' },
                  ]}
                />
              </FormField>
              <Toggle checked={override} onChange={(e) => setOverride(e.detail.checked)} description="For this query only; the saved configuration does not change.">
                Adjust retrieval for this query
              </Toggle>
              {override ? (
                <ColumnLayout columns={3}>
                  <FormField label="top_k" constraintText={`${bounds.minTopK}–${bounds.maxTopK} on your tier`} errorText={fe.top_k}>
                    <SpaceBetween size="xs">
                      <Slider value={k} min={bounds.minTopK} max={bounds.maxTopK} step={1} onChange={(e) => setTopK(e.detail.value)} ariaLabel="top_k slider" />
                      <Input type="number" value={String(k)} onChange={(e) => setTopK(Math.max(bounds.minTopK, Math.min(bounds.maxTopK, Math.round(Number(e.detail.value) || bounds.minTopK))))} ariaLabel="top_k value" />
                    </SpaceBetween>
                  </FormField>
                  <FormField label="alpha" constraintText="0 = keyword (BM25) only, 1 = vector only" errorText={fe.alpha}>
                    <SpaceBetween size="xs">
                      <Slider value={a} min={0} max={1} step={0.05} onChange={(e) => setAlpha(e.detail.value)} ariaLabel="alpha slider" />
                      <Input type="number" value={String(a)} onChange={(e) => setAlpha(Math.max(0, Math.min(1, Number(e.detail.value) || 0)))} ariaLabel="alpha value" />
                    </SpaceBetween>
                  </FormField>
                  <FormField label="Rerank" constraintText={bounds.rerankAllowed ? undefined : 'Not available on your tier'} errorText={fe.rerank}>
                    <Toggle checked={rr} disabled={!bounds.rerankAllowed} onChange={(e) => setRerank(e.detail.checked)}>
                      {rr ? 'On' : 'Off'}
                    </Toggle>
                  </FormField>
                </ColumnLayout>
              ) : null}
              <SpaceBetween direction="horizontal" size="xs">
                <Button variant="primary" loading={running} disabled={!question.trim()}>
                  {mode === 'search' ? 'Search' : 'Ask'}
                </Button>
                {running ? (
                  <Button formAction="none" onClick={() => abort.current?.abort()}>
                    Stop
                  </Button>
                ) : null}
              </SpaceBetween>
            </SpaceBetween>
          </form>
        </Container>
        <ErrorAlert error={error} onRetry={() => void run()} />
        <ErrorAlert error={schema.error} onRetry={schema.reload} />
        {result ? (
          <>
            <Container header={<Header variant="h2">Answer</Header>}>
              <SpaceBetween size="m">
                <div className="text-wrap" aria-live="polite" data-testid="answer">
                  {result.answer || (running ? '' : '—')}
                </div>
                {running && !result.done ? <StatusIndicator type="loading">{result.citations.length ? 'Generating' : 'Retrieving'}</StatusIndicator> : null}
                {result.done && !result.error ? (
                  <KeyValuePairs
                    columns={4}
                    items={[
                      { label: 'Model', value: `${result.model ?? '—'}${result.offline ? ' (offline)' : ''}${result.cached ? ' · cached' : ''}` },
                      { label: 'Tokens', value: `${result.usage?.prompt_tokens ?? 0} prompt + ${result.usage?.completion_tokens ?? 0} completion` },
                      { label: 'Cost', value: formatUsd(result.usage?.cost_usd ?? 0, 6) },
                      { label: 'Config version', value: result.configVersion ?? '—' },
                      { label: 'Latency', value: `${(result.latencyMs ?? 0).toFixed(1)} ms` },
                      { label: 'Embedding', value: `${(t.embedding_ms ?? 0).toFixed(1)} ms` },
                      { label: 'Generation', value: `${(t.generation_ms ?? 0).toFixed(1)} ms` },
                      { label: 'Retrieval and the rest', value: `${Math.max(0, (result.latencyMs ?? 0) - known).toFixed(1)} ms` },
                      {
                        label: 'Retrieval settings',
                        value: result.retrieval ? `top_k ${result.retrieval.top_k}, alpha ${result.retrieval.alpha}${result.retrieval.reranked ? ', reranked' : ''}` : '—',
                      },
                    ]}
                  />
                ) : null}
              </SpaceBetween>
            </Container>
            <CitationsTable citations={result.citations} title="Citations" />
          </>
        ) : null}
        {search ? (
          <SpaceBetween size="s">
            <CitationsTable citations={search.results} title="Search results" />
            {search.config_version !== undefined ? <Box variant="small">Configuration version {search.config_version}</Box> : null}
          </SpaceBetween>
        ) : null}
      </SpaceBetween>
    </ContentLayout>
  );
}
