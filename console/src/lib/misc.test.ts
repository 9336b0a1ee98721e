import { describe, expect, it } from 'vitest';
import { parseHash } from './router';
import { gauge } from '../pages/tenant/gauges';
import { contrast, readableOnWhite, safeColor, safeLogoUrl } from '../shell/branding';
import { contentTypeFor } from './upload';
import { pollDelay } from '../pages/tenant/Documents';
import { filterAudit } from '../pages/tenant/auditFilter';
import { isLastAdmin } from '../pages/tenant/Keys';
import { forgetConfigs, recalledConfig, rememberConfig } from './versionCache';
import { formatCents, formatMillicents, recentPeriods } from './format';
import type { ApiKey, AuditEntry, TenantConfig } from '../api/types';

describe('router', () => {
  it('parses hash routes with parameters', () => {
    expect(parseHash('#/tenants/t123')).toMatchObject({ path: '/tenants/t123', parts: ['tenants', 't123'] });
    expect(parseHash('#/sign-in?expired=1').params.get('expired')).toBe('1');
    expect(parseHash('').parts).toEqual([]);
    expect(parseHash('#/documents/a%20b').parts).toEqual(['documents', 'a b']);
  });
});

describe('quota gauges', () => {
  it('shows used against the limit, capped at 100 %', () => {
    expect(gauge('Queries', 250, 1000, String)).toMatchObject({ percent: 25, usedText: '250', limitText: '1000' });
    expect(gauge('Queries', 1500, 1000, String)).toMatchObject({ percent: 100 });
    expect(gauge('Queries', 1500, 1000, String).note).toMatch(/quota_exceeded/);
    expect(gauge('Budget', 3, Infinity, String)).toMatchObject({ percent: 0, limitText: 'no limit' });
  });
});

describe('branding', () => {
  it('shows a logo only from https', () => {
    expect(safeLogoUrl('https://cdn.example.com/logo.png')).toBe('https://cdn.example.com/logo.png');
    expect(safeLogoUrl('http://cdn.example.com/logo.png')).toBeNull();
    expect(safeLogoUrl('javascript:alert(1)')).toBeNull();
    expect(safeLogoUrl('data:image/svg+xml,<svg onload=alert(1)>')).toBeNull();
    expect(safeLogoUrl('https://user:pw@cdn.example.com/x.png')).toBeNull();
    expect(safeLogoUrl('not a url')).toBeNull();
    expect(safeLogoUrl(null)).toBeNull();
  });

  it('accepts hex colours only, and applies them to text only when readable', () => {
    expect(safeColor('#1D4ED8')).toBe('#1D4ED8');
    expect(safeColor('red; background:url(x)')).toBeNull();
    expect(contrast('#000000', '#ffffff')).toBeCloseTo(21, 0);
    expect(readableOnWhite('#1D4ED8')).toBe('#1D4ED8');
    expect(readableOnWhite('#FFE600')).toBeNull();
    expect(readableOnWhite('#6B7280')).toBe('#6B7280');
  });
});

describe('uploads', () => {
  it('uses the browser type or one from the extension', () => {
    expect(contentTypeFor({ name: 'a.pdf', type: '' })).toBe('application/pdf');
    expect(contentTypeFor({ name: 'notes.MD', type: '' })).toBe('text/markdown');
    expect(contentTypeFor({ name: 'x.bin', type: '' })).toBe('application/octet-stream');
    expect(contentTypeFor({ name: 'a.txt', type: 'text/plain' })).toBe('text/plain');
  });

  it('polls less often while nothing changes', () => {
    expect(pollDelay(0)).toBe(1500);
    expect(pollDelay(3)).toBeGreaterThan(pollDelay(2));
    expect(pollDelay(50)).toBe(15000);
  });
});

describe('audit filter', () => {
  const entries: AuditEntry[] = [
    { entry_id: '1', at: '', actor: 'admin:k1', action: 'key.created', target: 'k2', details: { name: 'ci', role: 'reader' } },
    { entry_id: '2', at: '', actor: 'operator', action: 'tenant.suspended', target: null, details: null },
    { entry_id: '3', at: '', actor: 'admin:k1', action: 'config.merge', target: 'v1', details: { changed_fields: ['temperature'] } },
  ];
  it('filters by action, actor and text', () => {
    expect(filterAudit(entries, { text: '', actor: '', action: 'config.merge' }).map((e) => e.entry_id)).toEqual(['3']);
    expect(filterAudit(entries, { text: '', actor: 'OPERATOR', action: '' }).map((e) => e.entry_id)).toEqual(['2']);
    expect(filterAudit(entries, { text: 'temperature', actor: '', action: '' }).map((e) => e.entry_id)).toEqual(['3']);
    expect(filterAudit(entries, { text: 'ci', actor: 'admin', action: '' }).map((e) => e.entry_id)).toEqual(['1']);
  });
});

describe('keys', () => {
  const key = (id: string, role: string, revoked: string | null = null): ApiKey => ({ key_id: id, name: id, role, prefix: 'raas_x', created_at: '', last_used_at: null, revoked_at: revoked });
  it('knows the last active admin key', () => {
    const keys = [key('a', 'admin'), key('b', 'reader'), key('c', 'admin', '2026-01-01')];
    expect(isLastAdmin(keys[0], keys)).toBe(true);
    expect(isLastAdmin(keys[1], keys)).toBe(false);
    expect(isLastAdmin(keys[0], [...keys, key('d', 'admin')])).toBe(false);
  });
});

describe('version cache', () => {
  it('recalls whole configs per tenant and version, and forgets them', () => {
    const config = { top_k: 3 } as unknown as TenantConfig;
    rememberConfig({ tenant_id: 't1', version: 2, config, updated_at: '', updated_by: '' });
    expect(recalledConfig('t1', 2)).toBe(config);
    expect(recalledConfig('t2', 2)).toBeUndefined();
    forgetConfigs();
    expect(recalledConfig('t1', 2)).toBeUndefined();
  });
});

describe('format', () => {
  it('formats integer cents and millicents', () => {
    expect(formatCents(52440)).toBe('$524.40');
    expect(formatCents(-4485)).toBe('-$44.85');
    expect(formatCents(123456789)).toBe('$1,234,567.89');
    expect(formatMillicents(5000)).toBe('$0.05');
    expect(formatMillicents(100)).toBe('$0.00100');
  });
  it('lists recent months across a year boundary', () => {
    expect(recentPeriods(3, new Date(Date.UTC(2026, 0, 15)))).toEqual(['2026-01', '2025-12', '2025-11']);
  });
});
