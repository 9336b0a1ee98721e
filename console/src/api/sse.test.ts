import { describe, expect, it } from 'vitest';
import { SseParser, readSse } from './sse';
import { applyEvent, EMPTY_STREAM } from '../lib/stream';

const STREAM =
  'event: retrieval\ndata: {"query_id":"q1","citations":[{"document_id":"d1","chunk_id":"d1:0","title":"Refunds","score":1,"snippet":"30 days"}]}\n\n' +
  'event: delta\ndata: {"text":"Customers"}\n\n' +
  ': keep-alive\n\n' +
  'event: delta\ndata: {"text":" may"}\n\n' +
  'event: done\ndata: {"query_id":"q1","model":"offline-extractive","offline":true,"cached":false,"config_version":3,"usage":{"prompt_tokens":1,"completion_tokens":2,"cost_usd":0},"latency_ms":52.6,"timings":{"embedding_ms":16.2,"generation_ms":0.2}}\n\n';

describe('SseParser', () => {
  it('parses whole events', () => {
    const events = new SseParser().push(STREAM);
    expect(events.map((e) => e.event)).toEqual(['retrieval', 'delta', 'delta', 'done']);
    expect(JSON.parse(events[1].data)).toEqual({ text: 'Customers' });
  });

  it('gives the same events whatever the chunk boundaries', () => {
    const whole = new SseParser().push(STREAM);
    for (const size of [1, 2, 3, 7, 13, 64]) {
      const p = new SseParser();
      const got = [];
      for (let i = 0; i < STREAM.length; i += size) got.push(...p.push(STREAM.slice(i, i + size)));
      expect(got).toEqual(whole);
    }
  });

  it('handles CRLF and CR line endings, split between chunks', () => {
    const p = new SseParser();
    const got = [...p.push('event: delta\r'), ...p.push('\ndata: {"text":"a"}\r\n\r'), ...p.push('\n'), ...p.push('data: x\r\r'), ...p.push(': next')];
    expect(got).toEqual([
      { event: 'delta', data: '{"text":"a"}' },
      { event: 'message', data: 'x' },
    ]);
  });

  it('joins multi-line data, keeps ids, ignores comments and unknown fields', () => {
    const got = new SseParser().push(':comment\nid: 7\nretry: 100\nfoo: bar\ndata: a\ndata:b\n\n');
    expect(got).toEqual([{ event: 'message', data: 'a\nb', id: '7' }]);
  });

  it('drops an event without data and an unterminated event at the end', () => {
    const p = new SseParser();
    expect(p.push('event: delta\n\n')).toEqual([]);
    expect(p.push('event: delta\ndata: {"text":"x"}\n')).toEqual([]);
    expect(p.end()).toEqual([]);
  });

  it('reads a fetch body stream', async () => {
    const bytes = new TextEncoder().encode(STREAM);
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        // split inside a multi-byte boundary-free spot and mid-line
        ctl.enqueue(bytes.slice(0, 50));
        ctl.enqueue(bytes.slice(50, 51));
        ctl.enqueue(bytes.slice(51));
        ctl.close();
      },
    });
    const events = [];
    for await (const ev of readSse(body)) events.push(ev.event);
    expect(events).toEqual(['retrieval', 'delta', 'delta', 'done']);
  });

  it('decodes UTF-8 split across chunks', async () => {
    const bytes = new TextEncoder().encode('event: delta\ndata: {"text":"héllo €"}\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (const b of bytes) ctl.enqueue(new Uint8Array([b]));
        ctl.close();
      },
    });
    const got = [];
    for await (const ev of readSse(body)) got.push(JSON.parse(ev.data).text);
    expect(got).toEqual(['héllo €']);
  });
});

describe('applyEvent', () => {
  it('folds retrieval, deltas and done into the answer', () => {
    let s = { ...EMPTY_STREAM };
    for (const ev of new SseParser().push(STREAM)) s = applyEvent(s, ev);
    expect(s.answer).toBe('Customers may');
    expect(s.citations[0].title).toBe('Refunds');
    expect(s.done).toBe(true);
    expect(s.configVersion).toBe(3);
    expect(s.model).toBe('offline-extractive');
    expect(s.usage?.completion_tokens).toBe(2);
    expect(s.timings?.embedding_ms).toBe(16.2);
  });

  it('turns an error event into an ApiError with the stable code', () => {
    const s = applyEvent({ ...EMPTY_STREAM, answer: 'partial' }, { event: 'error', data: '{"error":{"code":"llm_timeout","message":"the model did not answer in time"}}' });
    expect(s.done).toBe(true);
    expect(s.error?.code).toBe('llm_timeout');
    expect(s.error?.text).toBe('llm_timeout: the model did not answer in time');
    expect(s.answer).toBe('partial');
  });

  it('accepts an error event whose data is the error itself', () => {
    const s = applyEvent(EMPTY_STREAM, { event: 'error', data: '{"code":"llm_unavailable","message":"down"}' });
    expect(s.error?.code).toBe('llm_unavailable');
  });

  it('reports a malformed event instead of throwing', () => {
    const s = applyEvent(EMPTY_STREAM, { event: 'delta', data: '{not json' });
    expect(s.error?.code).toBe('invalid_stream');
  });
});
