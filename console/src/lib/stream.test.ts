import { afterEach, describe, expect, it, vi } from 'vitest';
import { streamQuery, type StreamState } from './stream';
import { setApiUrl } from '../api/client';

afterEach(() => vi.unstubAllGlobals());

function sseResponse(chunks: string[], contentType = 'text/event-stream') {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(ctl) {
      for (const c of chunks) ctl.enqueue(enc.encode(c));
      ctl.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': contentType } });
}

describe('streamQuery', () => {
  it('asks for SSE and shows the answer as it grows', async () => {
    setApiUrl('');
    vi.stubGlobal('sessionStorage', { getItem: () => 'raas_k', setItem: () => undefined, removeItem: () => undefined });
    const fetchMock = vi.fn(async () =>
      sseResponse([
        'event: retrieval\ndata: {"citations":[{"document_id":"d1","chunk_id":"c","title":"T","score":0.9,"snippet":"s"}]}\n\n',
        'event: delta\ndata: {"text":"Thirty"}\n\nevent: delta\nda',
        'ta: {"text":" days"}\n\n',
        'event: done\ndata: {"model":"m","config_version":2,"usage":{"prompt_tokens":1,"completion_tokens":2,"cost_usd":0.001},"latency_ms":10}\n\n',
      ]),
    );
    vi.stubGlobal('fetch', fetchMock);
    const seen: StreamState[] = [];
    const final = await streamQuery({ query: 'refund?' }, (s) => seen.push(s));
    const init = (fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1];
    expect((init.headers as Record<string, string>).Accept).toBe('text/event-stream');
    expect(seen.map((s) => s.answer)).toEqual(['', 'Thirty', 'Thirty days', 'Thirty days']);
    expect(final.done).toBe(true);
    expect(final.citations).toHaveLength(1);
    expect(final.configVersion).toBe(2);
  });

  it('reads a JSON answer when the deployment does not stream', async () => {
    vi.stubGlobal('sessionStorage', { getItem: () => 'raas_k', setItem: () => undefined, removeItem: () => undefined });
    vi.stubGlobal(
      'fetch',
      vi.fn(async () =>
        new Response(JSON.stringify({ answer: 'A', citations: [], model: 'm', offline: true, config_version: 1, usage: { prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 }, cached: false, latency_ms: 3 }), {
          status: 200,
          headers: { 'Content-Type': 'application/json' },
        }),
      ),
    );
    const final = await streamQuery({ query: 'q' }, () => undefined);
    expect(final).toMatchObject({ answer: 'A', done: true, model: 'm', configVersion: 1 });
  });

  it('reports a stream cut before done as retryable', async () => {
    vi.stubGlobal('sessionStorage', { getItem: () => 'raas_k', setItem: () => undefined, removeItem: () => undefined });
    vi.stubGlobal('fetch', vi.fn(async () => sseResponse(['event: delta\ndata: {"text":"par"}\n\n'])));
    const final = await streamQuery({ query: 'q' }, () => undefined);
    expect(final.answer).toBe('par');
    expect(final.error?.code).toBe('stream_interrupted');
    expect(final.error?.retryable).toBe(true);
  });

  it('throws the API error of a refused query', async () => {
    vi.stubGlobal('sessionStorage', { getItem: () => 'raas_k', setItem: () => undefined, removeItem: () => undefined });
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"error":{"code":"quota_exceeded","message":"monthly queries used up"}}', { status: 429 })));
    await expect(streamQuery({ query: 'q' }, () => undefined)).rejects.toMatchObject({ code: 'quota_exceeded' });
  });
});
