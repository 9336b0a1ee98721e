import { describe, expect, it } from 'vitest';
import { can, homeFor, navFor, routeAllowed, REQUIRED_ROLE, type Action } from './roles';

describe('role gating', () => {
  it('orders admin ⊃ editor ⊃ reader', () => {
    expect(can('admin', 'config.write')).toBe(true);
    expect(can('editor', 'config.write')).toBe(false);
    expect(can('editor', 'config.validate')).toBe(true);
    expect(can('editor', 'documents.write')).toBe(true);
    expect(can('reader', 'documents.write')).toBe(false);
    expect(can('reader', 'query')).toBe(true);
    expect(can('reader', 'keys.manage')).toBe(false);
    expect(can(null, 'query')).toBe(false);
  });

  it('gives a reader no write action at all', () => {
    const writes: Action[] = ['config.write', 'versions.rollback', 'keys.manage', 'documents.write', 'export', 'config.validate'];
    for (const a of writes) expect(can('reader', a)).toBe(false);
  });

  it('keeps the operator out of tenants and tenants out of operator pages', () => {
    for (const a of Object.keys(REQUIRED_ROLE) as Action[]) {
      if (a === 'tenants.manage') {
        expect(can('operator', a)).toBe(true);
        expect(can('admin', a)).toBe(false);
      } else expect(can('operator', a)).toBe(false);
    }
    expect(routeAllowed('operator', 'tenants')).toBe(true);
    expect(routeAllowed('operator', 'documents')).toBe(false);
    expect(routeAllowed('admin', 'tenants')).toBe(false);
    expect(routeAllowed('reader', 'playground')).toBe(true);
    expect(routeAllowed(null, 'overview')).toBe(false);
    expect(routeAllowed(null, 'pricing')).toBe(true);
  });

  it('builds the navigation from the contract names', () => {
    expect(navFor('operator').map((n) => n.text)).toEqual(['Tenants', 'Create tenant', 'Platform usage', 'Pricing calculator']);
    expect(navFor('reader').map((n) => n.text)).toEqual([
      'Overview',
      'Configuration',
      'Versions',
      'API keys',
      'Documents',
      'Playground',
      'Query history',
      'Invoices',
      'Audit log',
      'Export',
      'Pricing calculator',
    ]);
    expect(navFor(null).map((n) => n.href)).toEqual(['#/sign-in', '#/pricing']);
    expect(homeFor('operator')).toBe('/tenants');
    expect(homeFor('editor')).toBe('/overview');
    expect(homeFor(null)).toBe('/sign-in');
  });
});
