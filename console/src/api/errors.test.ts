import { describe, expect, it } from 'vitest';
import { ApiError, errorFromBody, explainForbidden, fieldErrors, networkError, templateRules } from './errors';

describe('errorFromBody', () => {
  it('reads the stable code, message and details', () => {
    const e = errorFromBody(409, '{"error":{"code":"last_admin_key","message":"cannot revoke the last active admin key","details":[]}}');
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe('last_admin_key');
    expect(e.text).toBe('last_admin_key: cannot revoke the last active admin key');
    expect(e.retryable).toBe(false);
  });

  it('falls back to a code from the status for a body that is not the error shape', () => {
    expect(errorFromBody(502, '<html>Bad gateway</html>').code).toBe('server_error');
    expect(errorFromBody(404, '').code).toBe('not_found');
    expect(errorFromBody(429, 'slow down', '12').retryAfter).toBe(12);
  });

  it('marks network failures, 5xx and rate limits retryable, not 4xx', () => {
    expect(networkError(new TypeError('Failed to fetch')).retryable).toBe(true);
    expect(errorFromBody(503, '{"error":{"code":"storage_unavailable","message":"x"}}').retryable).toBe(true);
    expect(errorFromBody(429, '{"error":{"code":"rate_limited","message":"x"}}').retryable).toBe(true);
    expect(errorFromBody(429, '{"error":{"code":"quota_exceeded","message":"x"}}').retryable).toBe(false);
    expect(errorFromBody(422, '{"error":{"code":"validation_error","message":"x"}}').retryable).toBe(false);
  });
});

describe('fieldErrors', () => {
  it('maps details to fields, dropping the body. prefix', () => {
    const e = errorFromBody(
      422,
      JSON.stringify({
        error: {
          code: 'validation_error',
          message: 'request validation failed',
          details: [
            { field: 'body.temperature', message: 'Input should be a valid number', type: 'float_type' },
            { field: 'top_k', message: 'Input should be less than or equal to 20' },
            { field: 'branding.logo_url', message: 'must be https' },
          ],
        },
      }),
    );
    expect(fieldErrors(e)).toEqual({
      temperature: 'validation_error: Input should be a valid number',
      top_k: 'validation_error: Input should be less than or equal to 20',
      'branding.logo_url': 'validation_error: must be https',
    });
  });

  it('names the template rule', () => {
    const e = errorFromBody(
      422,
      '{"error":{"code":"invalid_prompt_template","message":"prompt template rejected: attribute_or_index_access","details":[{"field":"prompt_template","rule":"attribute_or_index_access","message":"placeholder {query.__class__} uses attribute or index access; use a plain name"}]}}',
    );
    expect(fieldErrors(e).prompt_template).toBe(
      'invalid_prompt_template: attribute_or_index_access — placeholder {query.__class__} uses attribute or index access; use a plain name',
    );
    expect(templateRules(e)).toEqual([{ rule: 'attribute_or_index_access', message: 'placeholder {query.__class__} uses attribute or index access; use a plain name' }]);
  });

  it('is empty without an error', () => {
    expect(fieldErrors(null)).toEqual({});
    expect(templateRules(new ApiError(422, 'validation_error', 'x', [{ rule: 'r' }]))).toEqual([]);
  });
});

describe('explainForbidden', () => {
  it('names the role needed and the one the key has', () => {
    const e = new ApiError(403, 'insufficient_role', 'this action needs the admin role');
    expect(explainForbidden(e, 'admin', 'reader')).toBe('This needs the admin role. Your key has the reader role. Ask an admin of this tenant for a key with that role.');
  });
  it('explains suspension and operator keys', () => {
    expect(explainForbidden(new ApiError(403, 'tenant_suspended', 'x'), 'admin', 'admin')).toMatch(/suspended/);
    expect(explainForbidden(new ApiError(403, 'tenant_key_required', 'x'), undefined, 'operator')).toMatch(/operator key never acts inside a tenant/);
  });
});
