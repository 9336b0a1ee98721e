import { useEffect, useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import FormField from '@cloudscape-design/components/form-field';
import Select from '@cloudscape-design/components/select';
import Slider from '@cloudscape-design/components/slider';
import Input from '@cloudscape-design/components/input';
import Toggle from '@cloudscape-design/components/toggle';
import SpaceBetween from '@cloudscape-design/components/space-between';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import Table from '@cloudscape-design/components/table';
import Box from '@cloudscape-design/components/box';
import { api } from '../api/client';
import type { Quote } from '../api/types';
import { asApiError, fieldErrors, type ApiError } from '../api/errors';
import ErrorAlert from '../components/ErrorAlert';
import { formatCents, formatMillicents } from '../lib/format';

const TIERS = ['free', 'smb', 'midmarket', 'enterprise'];

function NumberSlider(props: { label: string; value: number; max: number; step: number; onChange: (v: number) => void; error?: string; unit?: string }) {
  const { label, value, max, step, onChange, error, unit } = props;
  return (
    <FormField label={label} errorText={error} description={unit}>
      <SpaceBetween size="xs">
        <Slider value={Math.min(value, max)} min={0} max={max} step={step} onChange={(e) => onChange(e.detail.value)} ariaLabel={`${label} slider`} />
        <Input type="number" value={String(value)} onChange={(e) => onChange(Math.max(0, Number(e.detail.value) || 0))} ariaLabel={`${label} value`} inputMode="decimal" />
      </SpaceBetween>
    </FormField>
  );
}

/** Public: a quote from POST /v1/pricing/estimate, recomputed as the inputs change. */
export default function Pricing() {
  const [tier, setTier] = useState('smb');
  const [queries, setQueries] = useState(15000);
  const [storage, setStorage] = useState(7.5);
  const [apiCalls, setApiCalls] = useState(120000);
  const [annual, setAnnual] = useState(false);
  const [quote, setQuote] = useState<Quote | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    const ctl = new AbortController();
    const t = setTimeout(() => {
      api
        .post<Quote>('/v1/pricing/estimate', { tier, queries: Math.round(queries), storage_gb: storage, api_calls: Math.round(apiCalls), annual }, { anonymous: true, signal: ctl.signal })
        .then((q) => {
          setQuote(q);
          setError(null);
        })
        .catch((e) => {
          if (!ctl.signal.aborted) setError(asApiError(e));
        });
    }, 250);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [tier, queries, storage, apiCalls, annual, tick]);

  const fe = fieldErrors(error);
  return (
    <ContentLayout header={<Header variant="h1" description="Estimate a month's bill for a tier and your volumes.">Pricing calculator</Header>}>
      <SpaceBetween size="l">
        <Container header={<Header variant="h2">Your volumes</Header>}>
          <ColumnLayout columns={2}>
            <SpaceBetween size="m">
              <FormField label="Tier" errorText={fe.tier}>
                <Select selectedOption={{ value: tier, label: tier }} options={TIERS.map((t) => ({ value: t, label: t }))} onChange={(e) => setTier(e.detail.selectedOption.value ?? 'smb')} />
              </FormField>
              <FormField label="Annual billing" description="A discount on the base fee for a yearly commitment.">
                <Toggle checked={annual} onChange={(e) => setAnnual(e.detail.checked)}>
                  {annual ? 'Billed annually' : 'Billed monthly'}
                </Toggle>
              </FormField>
            </SpaceBetween>
            <SpaceBetween size="m">
              <NumberSlider label="Queries per month" value={queries} max={1000000} step={1000} onChange={setQueries} error={fe.queries} />
              <NumberSlider label="Storage (GB)" value={storage} max={1000} step={0.5} onChange={setStorage} error={fe.storage_gb} unit="GB-months of documents stored" />
              <NumberSlider label="API calls per month" value={apiCalls} max={5000000} step={10000} onChange={setApiCalls} error={fe.api_calls} />
            </SpaceBetween>
          </ColumnLayout>
        </Container>
        <ErrorAlert error={error} onRetry={() => setTick((t) => t + 1)} />
        <Table
          header={<Header variant="h2">Estimate</Header>}
          items={quote?.lines ?? []}
          loading={!quote && !error}
          loadingText="Computing"
          columnDefinitions={[
            { id: 'd', header: 'Line', cell: (l) => l.description },
            { id: 'q', header: 'Quantity', cell: (l) => l.quantity },
            { id: 'u', header: 'Unit price', cell: (l) => formatMillicents(l.unit_price_millicents) },
            { id: 'a', header: 'Amount', cell: (l) => formatCents(l.amount_cents, quote?.currency) },
          ]}
          footer={
            quote ? (
              <Box textAlign="right">
                <SpaceBetween size="xxs">
                  <div>Subtotal: {formatCents(quote.subtotal_cents, quote.currency)}</div>
                  <div>Discount: {formatCents(quote.discount_cents, quote.currency)}</div>
                  <Box variant="h3" tagOverride="p">
                    Total per month: <span data-testid="quote-total">{formatCents(quote.total_cents, quote.currency)}</span>
                  </Box>
                  {quote.custom_contract ? <Box variant="small">Enterprise pricing is a custom contract: this is a starting point.</Box> : null}
                </SpaceBetween>
              </Box>
            ) : undefined
          }
        />
      </SpaceBetween>
    </ContentLayout>
  );
}
