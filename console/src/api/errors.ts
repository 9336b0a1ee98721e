// Every API error is {"error": {"code", "message", "details"}} with a stable code (README "Errors").
// The console shows "<code>: <message>" next to the field or action, offers a retry for network
// failures and 5xx (what the user typed is kept: pages keep their own state), sends a 401 back to
// sign-in and explains which role a 403 needs.

export interface ErrorDetail {
  field?: string;
  message?: string;
  rule?: string;
  type?: string;
  [key: string]: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetail[];
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string, details: ErrorDetail[] = [], retryAfter: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }

  /** Network failures (status 0), 5xx, request timeouts and rate limits may succeed if tried again. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 408 || this.code === 'rate_limited' || this.code === 'idempotency_in_progress';
  }

  get text(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** Builds an ApiError from a response status and its (possibly non-JSON) body text. */
export function errorFromBody(status: number, bodyText: string, retryAfterHeader: string | null = null): ApiError {
  const retryAfter = retryAfterHeader !== null && /^\d+$/.test(retryAfterHeader) ? Number(retryAfterHeader) : null;
  try {
    const parsed: unknown = JSON.parse(bodyText);
    const err = (parsed as { error?: unknown })?.error;
    if (err && typeof err === 'object') {
      const e = err as { code?: unknown; message?: unknown; details?: unknown };
      const code = typeof e.code === 'string' ? e.code : fallbackCode(status);
      const message = typeof e.message === 'string' ? e.message : `HTTP ${status}`;
      const details = Array.isArray(e.details) ? (e.details.filter((d) => d && typeof d === 'object') as ErrorDetail[]) : [];
      return new ApiError(status, code, message, details, retryAfter);
    }
  } catch {
    // not JSON: fall through to a generic error carrying the status
  }
  return new ApiError(status, fallbackCode(status), bodyText.trim().slice(0, 200) || `HTTP ${status}`, [], retryAfter);
}

export function fallbackCode(status: number): string {
  if (status === 0) return 'network_error';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server_error';
  return 'request_failed';
}

export function networkError(cause: unknown): ApiError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ApiError(0, 'network_error', `the API could not be reached (${why}); check your connection and retry`);
}

export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof Error) return new ApiError(0, 'client_error', e.message);
  return new ApiError(0, 'client_error', String(e));
}

/**
 * Field errors keyed by field path ("top_k", "branding.logo_url"). Validation details name the field
 * as the request model sees it ("body.temperature"), so the "body." prefix is dropped.
 */
export function fieldErrors(error: ApiError | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!error) return out;
  for (const d of error.details) {
    if (typeof d.field !== 'string' || !d.field) continue;
    const field = d.field.replace(/^body\./, '');
    const message = typeof d.message === 'string' ? d.message : error.message;
    const text = `${error.code}: ${d.rule ? `${d.rule} — ` : ''}${message}`;
    out[field] = out[field] ? `${out[field]}; ${text}` : text;
  }
  return out;
}

/** The rules an invalid_prompt_template error names (details[].rule). */
export function templateRules(error: ApiError | null | undefined): { rule: string; message: string }[] {
  if (!error || error.code !== 'invalid_prompt_template') return [];
  return error.details
    .filter((d) => typeof d.rule === 'string')
    .map((d) => ({ rule: String(d.rule), message: typeof d.message === 'string' ? d.message : error.message }));
}

/** A sentence for a 403 that names the role the action needs. */
export function explainForbidden(error: ApiError, requiredRole: string | undefined, currentRole: string | undefined): string {
  if (error.code === 'tenant_suspended') return 'This tenant is suspended: its keys are refused until the operator resumes it.';
  if (error.code === 'tenant_key_required') return 'This page needs a tenant key (admin, editor or reader); an operator key never acts inside a tenant.';
  if (error.code === 'insufficient_role' || error.status === 403) {
    const need = requiredRole ? `the ${requiredRole} role` : 'a role with more rights';
    const have = currentRole ? ` Your key has the ${currentRole} role.` : '';
    return `This needs ${need}.${have} Ask an admin of this tenant for a key with that role.`;
  }
  return error.message;
}
