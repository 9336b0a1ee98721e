import { ApiError, errorFromBody, networkError } from './errors';

// The API key lives in sessionStorage only (never localStorage or a cookie): it is gone when the
// tab closes, and sign-out forgets it at once.
export const KEY_STORAGE = 'raas.apiKey';

export function getApiKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function setApiKey(key: string): void {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function clearApiKey(): void {
  try {
    sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled: nothing was kept
  }
}

let apiUrl = '';
let onUnauthorized: (() => void) | null = null;

/** Reads config.json next to index.html: {"apiUrl": ""} ("" = same origin). */
export async function loadRuntimeConfig(): Promise<void> {
  try {
    const res = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: 'no-store' });
    if (res.ok) {
      const cfg = (await res.json()) as { apiUrl?: unknown };
      if (typeof cfg.apiUrl === 'string') apiUrl = cfg.apiUrl.replace(/\/+$/, '');
    }
  } catch {
    // no config.json (vite dev): same origin
  }
}

export function setApiUrl(url: string): void {
  apiUrl = url.replace(/\/+$/, '');
}

export function apiBase(): string {
  return apiUrl;
}

/** Called on any 401: the shell forgets the key and returns to sign-in. */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  body?: unknown;
  query?: Query;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Sign-in checks a key that is not stored yet. */
  key?: string;
  /** Public routes (pricing) send no key. */
  anonymous?: boolean;
}

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === '') continue;
    params.set(k, String(v));
  }
  const qs = params.toString();
  return `${apiUrl}${path}${qs ? `?${qs}` : ''}`;
}

export function authHeaders(opts: RequestOptions = {}): Record<string, string> {
  const headers: Record<string, string> = {};
  const key = opts.key ?? (opts.anonymous ? null : getApiKey());
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

/** Sends one request; throws ApiError with the API's stable code on any non-2xx or network failure. */
export async function rawRequest(method: string, path: string, opts: RequestOptions = {}, accept = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept, ...authHeaders(opts), ...(opts.headers ?? {}) };
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(buildUrl(path, opts.query), { method, headers, body, signal: opts.signal, credentials: 'omit' });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw networkError(e);
  }
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    const err = errorFromBody(res.status, text, res.headers.get('Retry-After'));
    if (res.status === 401 && !opts.key && !opts.anonymous && onUnauthorized) onUnauthorized();
    throw err;
  }
  return res;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await rawRequest(method, path, opts);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, 'invalid_response', 'the API answered with something that is not JSON');
  }
}

export const api = {
  get: <T>(path: string, opts?: RequestOptions) => request<T>('GET', path, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, { ...opts, body: body ?? {} }),
  put: <T>(path: string, body: unknown, opts?: RequestOptions) => request<T>('PUT', path, { ...opts, body }),
  patch: <T>(path: string, body: unknown, opts?: RequestOptions) => request<T>('PATCH', path, { ...opts, body }),
  del: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('DELETE', path, { ...opts, body }),
};

/** Fetches every page of a cursor-paginated list (bounded, so a huge tenant cannot hang the page). */
export async function fetchAllPages<T>(
  path: string,
  itemsKey: string,
  query: Query = {},
  maxPages = 20,
): Promise<{ items: T[]; complete: boolean }> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < maxPages; page++) {
    const res: Record<string, unknown> = await api.get(path, { query: { ...query, cursor: cursor ?? undefined } });
    items.push(...((res[itemsKey] as T[]) ?? []));
    cursor = (res.next_cursor as string | null) ?? null;
    if (!cursor) return { items, complete: true };
  }
  return { items, complete: false };
}

export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}
