import { rawRequest } from '../api/client';
import { ApiError } from '../api/errors';
import { readSse, type SseEvent } from '../api/sse';
import type { Citation, QueryResult, QueryUsage } from '../api/types';

export interface StreamState {
  answer: string;
  citations: Citation[];
  queryId?: string;
  retrieval?: QueryResult['retrieval'];
  done: boolean;
  model?: string;
  offline?: boolean;
  cached?: boolean;
  configVersion?: number;
  usage?: QueryUsage;
  latencyMs?: number;
  timings?: Record<string, number>;
  error?: ApiError;
}

export const EMPTY_STREAM: StreamState = { answer: '', citations: [], done: false };

/** Folds one SSE event of POST /v1/query into the answer being shown. */
export function applyEvent(state: StreamState, ev: SseEvent): StreamState {
  let data: Record<string, unknown> = {};
  try {
    data = ev.data ? (JSON.parse(ev.data) as Record<string, unknown>) : {};
  } catch {
    return { ...state, error: new ApiError(0, 'invalid_stream', `the ${ev.event} event is not JSON`) };
  }
  switch (ev.event) {
    case 'retrieval':
      return {
        ...state,
        queryId: (data.query_id as string) ?? state.queryId,
        citations: (data.citations as Citation[]) ?? [],
        retrieval: data.retrieval as StreamState['retrieval'],
      };
    case 'delta':
      return { ...state, answer: state.answer + String(data.text ?? '') };
    case 'done':
      return {
        ...state,
        done: true,
        queryId: (data.query_id as string) ?? state.queryId,
        model: data.model as string,
        offline: data.offline as boolean,
        cached: data.cached as boolean,
        configVersion: data.config_version as number,
        usage: data.usage as QueryUsage,
        latencyMs: data.latency_ms as number,
        timings: data.timings as Record<string, number>,
        answer: typeof data.answer === 'string' && !state.answer ? data.answer : state.answer,
      };
    case 'error': {
      const err = (data.error ?? data) as { code?: string; message?: string; details?: unknown };
      return { ...state, done: true, error: new ApiError(Number(data.status ?? 0) || 0, err.code ?? 'stream_error', err.message ?? 'the answer stopped') };
    }
    default:
      return state;
  }
}

export function fromJson(r: QueryResult): StreamState {
  return {
    answer: r.answer,
    citations: r.citations,
    queryId: r.query_id,
    retrieval: r.retrieval,
    done: true,
    model: r.model,
    offline: r.offline,
    cached: r.cached,
    configVersion: r.config_version,
    usage: r.usage,
    latencyMs: r.latency_ms,
    timings: r.timings,
  };
}

/**
 * POST /v1/query with Accept: text/event-stream, calling onUpdate as events arrive. A deployment
 * that answers JSON instead (no streaming path) is read whole.
 */
export async function streamQuery(body: unknown, onUpdate: (s: StreamState) => void, signal?: AbortSignal): Promise<StreamState> {
  const res = await rawRequest('POST', '/v1/query', { body, signal }, 'text/event-stream');
  let state: StreamState = { ...EMPTY_STREAM };
  const type = res.headers.get('Content-Type') ?? '';
  if (!type.includes('text/event-stream') || !res.body) {
    state = fromJson((await res.json()) as QueryResult);
    onUpdate(state);
    return state;
  }
  for await (const ev of readSse(res.body, signal)) {
    state = applyEvent(state, ev);
    onUpdate(state);
  }
  if (!state.done && !state.error) {
    state = { ...state, error: new ApiError(0, 'stream_interrupted', 'the connection closed before the answer was complete; retry') };
    onUpdate(state);
  }
  return state;
}
