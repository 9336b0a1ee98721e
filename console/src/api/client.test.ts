import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { api, buildUrl, clearApiKey, getApiKey, KEY_STORAGE, loadRuntimeConfig, setApiKey, setApiUrl, setUnauthorizedHandler } from './client';
import { ApiError } from './errors';

class MemoryStorage {
  data = new Map<string, string>();
  getItem(k: string) {
    return this.data.has(k) ? (this.data.get(k) as string) : null;
  }
  setItem(k: string, v: string) {
    this.data.set(k, String(v));
  }
  removeItem(k: string) {
    this.data.delete(k);
  }
}

let session: MemoryStorage;
let local: MemoryStorage;

beforeEach(() => {
  session = new MemoryStorage();
  local = new MemoryStorage();
  vi.stubGlobal('sessionStorage', session);
  vi.stubGlobal('localStorage', local);
  setApiUrl('');
});

afterEach(() => {
  vi.unstubAllGlobals();
  setUnauthorizedHandler(null);
});

function respond(status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return vi.fn(async (_url: string, _init?: RequestInit) => new Response(status === 204 ? null : text, { status, headers: { 'Content-Type': 'application/json', ...headers } }));
}

describe('the API key', () => {
  it('lives in sessionStorage only', () => {
    setApiKey('raas_secret');
    expect(session.getItem(KEY_STORAGE)).toBe('raas_secret');
    expect(local.data.size).toBe(0);
    expect(getApiKey()).toBe('raas_secret');
    clearApiKey();
    expect(getApiKey()).toBeNull();
  });

  it('is sent as a bearer token, never as a cookie', async () => {
    setApiKey('raas_secret');
    const fetchMock = respond(200, { ok: true });
    vi.stubGlobal('fetch', fetchMock);
    await api.get('/v1/config');
    const init = fetchMock.mock.calls[0][1] as RequestInit;
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer raas_secret');
    expect(init.credentials).toBe('omit');
  });

  it('is not sent on public routes', async () => {
    setApiKey('raas_secret');
    const fetchMock = respond(200, { total_cents: 1 });
    vi.stubGlobal('fetch', fetchMock);
    await api.post('/v1/pricing/estimate', { tier: 'smb' }, { anonymous: true });
    expect((fetchMock.mock.calls[0][1] as RequestInit).headers).not.toHaveProperty('Authorization');
  });
});

describe('requests', () => {
  it('builds URLs from the configured API and drops empty query values', () => {
    setApiUrl('https://api.example.com/prod/');
    expect(buildUrl('/v1/tenants', { status: '', tier: 'smb', q: undefined, limit: 20 })).toBe('https://api.example.com/prod/v1/tenants?tier=smb&limit=20');
  });

  it('reads apiUrl from config.json', async () => {
    vi.stubGlobal('fetch', respond(200, { apiUrl: 'https://api.example.com/' }));
    await loadRuntimeConfig();
    expect(buildUrl('/v1/me')).toBe('https://api.example.com/v1/me');
  });

  it('sends JSON bodies', async () => {
    const fetchMock = respond(201, { key: {} });
    vi.stubGlobal('fetch', fetchMock);
    await api.post('/v1/keys', { name: 'ci', role: 'reader' });
    const init = fetchMock.mock.calls[0][1] as RequestInit;
    expect(init.method).toBe('POST');
    expect(init.body).toBe('{"name":"ci","role":"reader"}');
    expect((init.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });

  it('answers undefined for 204', async () => {
    vi.stubGlobal('fetch', respond(204, ''));
    await expect(api.del('/v1/keys/k1')).resolves.toBeUndefined();
  });

  it('throws the API error with its stable code', async () => {
    vi.stubGlobal('fetch', respond(409, { error: { code: 'last_admin_key', message: 'cannot revoke the last active admin key', details: [] } }));
    const err = await api.del('/v1/keys/k1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).text).toBe('last_admin_key: cannot revoke the last active admin key');
  });

  it('turns a network failure into a retryable network_error', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => {
        throw new TypeError('Failed to fetch');
      }),
    );
    const err = (await api.get('/v1/config').catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe('network_error');
    expect(err.retryable).toBe(true);
  });

  it('calls the sign-in handler on 401, but not while checking a key at sign-in', async () => {
    const onUnauthorized = vi.fn();
    setUnauthorizedHandler(onUnauthorized);
    vi.stubGlobal('fetch', respond(401, { error: { code: 'unauthorized', message: 'unknown key' } }));
    await api.get('/v1/me', { key: 'raas_typed' }).catch(() => undefined);
    expect(onUnauthorized).not.toHaveBeenCalled();
    await api.get('/v1/config').catch(() => undefined);
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });
});
