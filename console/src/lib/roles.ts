import type { Role } from '../api/types';

// Inside a tenant admin ⊃ editor ⊃ reader; the operator role is separate and never acts inside a
// tenant (README "Roles"). The console hides every control the role may not use.
const RANK: Record<string, number> = { reader: 1, editor: 2, admin: 3 };

export type Action =
  | 'config.read'
  | 'config.validate'
  | 'config.write'
  | 'versions.rollback'
  | 'keys.manage'
  | 'documents.read'
  | 'documents.write'
  | 'query'
  | 'usage.read'
  | 'invoices.read'
  | 'audit.read'
  | 'export'
  | 'tenants.manage';

/** The least role each action needs (mirrors the API's own checks, README "HTTP API"). */
export const REQUIRED_ROLE: Record<Action, Role> = {
  'config.read': 'reader',
  'config.validate': 'editor',
  'config.write': 'admin',
  'versions.rollback': 'admin',
  'keys.manage': 'admin',
  'documents.read': 'reader',
  'documents.write': 'editor',
  query: 'reader',
  'usage.read': 'admin',
  'invoices.read': 'admin',
  'audit.read': 'admin',
  export: 'admin',
  'tenants.manage': 'operator',
};

export function can(role: Role | null | undefined, action: Action): boolean {
  if (!role) return false;
  const needed = REQUIRED_ROLE[action];
  if (needed === 'operator' || role === 'operator') return role === needed;
  return (RANK[role] ?? 0) >= (RANK[needed] ?? 99);
}

export interface NavItem {
  text: string;
  href: string;
  /** The action whose role the page needs to show anything; the page explains when it is missing. */
  action?: Action;
}

export const OPERATOR_NAV: NavItem[] = [
  { text: 'Tenants', href: '#/tenants' },
  { text: 'Create tenant', href: '#/tenants/new' },
  { text: 'Platform usage', href: '#/platform-usage' },
];

export const TENANT_NAV: NavItem[] = [
  { text: 'Overview', href: '#/overview' },
  { text: 'Configuration', href: '#/configuration' },
  { text: 'Versions', href: '#/versions' },
  { text: 'API keys', href: '#/keys', action: 'keys.manage' },
  { text: 'Documents', href: '#/documents' },
  { text: 'Playground', href: '#/playground' },
  { text: 'Query history', href: '#/queries' },
  { text: 'Invoices', href: '#/invoices', action: 'invoices.read' },
  { text: 'Audit log', href: '#/audit', action: 'audit.read' },
  { text: 'Export', href: '#/export', action: 'export' },
];

export const PUBLIC_NAV: NavItem[] = [{ text: 'Pricing calculator', href: '#/pricing' }];

/** Navigation for a role: the operator sees only operator pages, tenant roles only tenant pages. */
export function navFor(role: Role | null | undefined): NavItem[] {
  if (role === 'operator') return [...OPERATOR_NAV, ...PUBLIC_NAV];
  if (role) return [...TENANT_NAV, ...PUBLIC_NAV];
  return [{ text: 'Sign in', href: '#/sign-in' }, ...PUBLIC_NAV];
}

const OPERATOR_ROUTES = ['tenants', 'platform-usage'];
const TENANT_ROUTES = ['overview', 'configuration', 'versions', 'keys', 'documents', 'playground', 'queries', 'invoices', 'audit', 'export'];

/** Where a role may go: a route of the other side sends the user to their home page. */
export function routeAllowed(role: Role | null | undefined, first: string): boolean {
  if (first === 'pricing' || first === 'sign-in') return true;
  if (!role) return false;
  if (role === 'operator') return OPERATOR_ROUTES.includes(first);
  return TENANT_ROUTES.includes(first);
}

export function homeFor(role: Role | null | undefined): string {
  if (role === 'operator') return '/tenants';
  if (role) return '/overview';
  return '/sign-in';
}
