import { lazy, Suspense, useCallback, useEffect, useMemo, useState } from 'react';
import AppLayout from '@cloudscape-design/components/app-layout';
import TopNavigation from '@cloudscape-design/components/top-navigation';
import SideNavigation from '@cloudscape-design/components/side-navigation';
import Spinner from '@cloudscape-design/components/spinner';
import { I18nProvider } from '@cloudscape-design/components/i18n';
import enMessages from '@cloudscape-design/components/i18n/messages/all.en';
import { api, clearApiKey, getApiKey, setApiKey, setUnauthorizedHandler } from '../api/client';
import type { Me } from '../api/types';
import { asApiError } from '../api/errors';
import { homeFor, navFor, routeAllowed } from '../lib/roles';
import { navigate, useRoute } from '../lib/router';
import { SessionContext, type Session } from './session';
import { applyBranding, safeLogoUrl } from './branding';
import { forgetConfigs } from '../lib/versionCache';

// Every page is its own chunk, so the first load carries only the shell (layout, navigation and
// sign-in); Cloudscape's tables, forms, wizards and charts load with the page that uses them.
const pages = {
  signIn: lazy(() => import('../pages/SignIn')),
  tenants: lazy(() => import('../pages/operator/Tenants')),
  createTenant: lazy(() => import('../pages/operator/CreateTenant')),
  tenantDetail: lazy(() => import('../pages/operator/TenantDetail')),
  platformUsage: lazy(() => import('../pages/operator/PlatformUsage')),
  overview: lazy(() => import('../pages/tenant/Overview')),
  configuration: lazy(() => import('../pages/tenant/Configuration')),
  versions: lazy(() => import('../pages/tenant/Versions')),
  keys: lazy(() => import('../pages/tenant/Keys')),
  documents: lazy(() => import('../pages/tenant/Documents')),
  documentDetail: lazy(() => import('../pages/tenant/DocumentDetail')),
  playground: lazy(() => import('../pages/tenant/Playground')),
  queries: lazy(() => import('../pages/tenant/Queries')),
  invoices: lazy(() => import('../pages/tenant/Invoices')),
  invoiceDetail: lazy(() => import('../pages/tenant/InvoiceDetail')),
  audit: lazy(() => import('../pages/tenant/Audit')),
  export: lazy(() => import('../pages/tenant/Export')),
  pricing: lazy(() => import('../pages/Pricing')),
  notFound: lazy(() => import('../pages/NotFound')),
};

function pageFor(parts: string[]) {
  const [first, second] = parts;
  switch (first) {
    case 'sign-in':
      return pages.signIn;
    case 'tenants':
      if (second === 'new') return pages.createTenant;
      return second ? pages.tenantDetail : pages.tenants;
    case 'platform-usage':
      return pages.platformUsage;
    case 'overview':
      return pages.overview;
    case 'configuration':
      return pages.configuration;
    case 'versions':
      return pages.versions;
    case 'keys':
      return pages.keys;
    case 'documents':
      return second ? pages.documentDetail : pages.documents;
    case 'playground':
      return pages.playground;
    case 'queries':
      return pages.queries;
    case 'invoices':
      return second ? pages.invoiceDetail : pages.invoices;
    case 'audit':
      return pages.audit;
    case 'export':
      return pages.export;
    case 'pricing':
      return pages.pricing;
    default:
      return pages.notFound;
  }
}

export default function App() {
  const route = useRoute();
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState<boolean>(() => getApiKey() !== null);
  const [startError, setStartError] = useState<string | null>(null);
  const [navOpen, setNavOpen] = useState(() => window.matchMedia?.('(min-width: 689px)').matches ?? true);

  const signOut = useCallback(() => {
    clearApiKey();
    forgetConfigs();
    setMe(null);
    applyBranding(null);
    navigate('/sign-in');
  }, []);

  const loadMe = useCallback(async (key?: string) => {
    const who = await api.get<Me>('/v1/me', key ? { key } : undefined);
    setMe(who);
    applyBranding(who.branding);
    return who;
  }, []);

  const signIn = useCallback(
    async (key: string) => {
      const who = await loadMe(key);
      setApiKey(key);
      navigate(homeFor(who.role));
    },
    [loadMe],
  );

  const refreshMe = useCallback(async () => {
    await loadMe();
  }, [loadMe]);

  // Any 401 (revoked key, expired token) forgets the key and returns to sign-in.
  useEffect(() => {
    setUnauthorizedHandler(() => {
      clearApiKey();
      forgetConfigs();
      setMe(null);
      applyBranding(null);
      navigate('/sign-in?expired=1');
    });
    return () => setUnauthorizedHandler(null);
  }, []);

  useEffect(() => {
    if (!getApiKey()) return;
    loadMe()
      .catch((e) => {
        const err = asApiError(e);
        if (err.status === 401) return; // the handler above already went to sign-in
        setStartError(`${err.code}: ${err.message}`);
      })
      .finally(() => setChecking(false));
  }, [loadMe]);

  const first = route.parts[0] ?? '';
  const role = me?.role ?? null;

  // Route guard: no key → sign-in; the other side's pages → home.
  useEffect(() => {
    if (checking) return;
    if (!first) {
      navigate(homeFor(role), true);
      return;
    }
    if (first === 'sign-in' && role) {
      navigate(homeFor(role), true);
      return;
    }
    if (!routeAllowed(role, first) && !startError) navigate(homeFor(role), true);
  }, [checking, first, role, startError]);

  const session: Session = useMemo(() => ({ me, role, signIn, signOut, refreshMe }), [me, role, signIn, signOut, refreshMe]);
  const Page = pageFor(route.parts);
  const nav = navFor(role);
  const activeHref = `#/${route.parts.slice(0, first === 'tenants' && route.parts[1] === 'new' ? 2 : 1).join('/')}`;
  const logo = safeLogoUrl(me?.branding?.logo_url);
  const title = me?.tenant_name ?? (role === 'operator' ? 'raas operator console' : 'raas console');

  return (
    <I18nProvider locale="en" messages={[enMessages]}>
    <SessionContext.Provider value={session}>
      <div id="top-nav" className="no-print">
        <TopNavigation
          identity={{ href: role ? `#${homeFor(role)}` : '#/sign-in', title }}
          utilities={
            me
              ? [
                  {
                    type: 'menu-dropdown',
                    text: `${me.key_name ?? me.key_id} (${me.role})`,
                    ariaLabel: `Signed in as ${me.key_name ?? me.key_id}, role ${me.role}`,
                    items: [
                      { id: 'key', text: `Key ${me.key_id}`, disabled: true },
                      { id: 'role', text: `Role: ${me.role}`, disabled: true },
                      ...(me.tenant_id ? [{ id: 'tenant', text: `Tenant ${me.tenant_id} (${me.tier ?? ''} tier)`, disabled: true }] : []),
                    ],
                  },
                  { type: 'button', text: 'Sign out', onClick: signOut },
                ]
              : [{ type: 'button', text: 'Sign in', href: '#/sign-in' }]
          }
        />
      </div>
      <AppLayout
        headerSelector="#top-nav"
        toolsHide
        navigationOpen={navOpen}
        onNavigationChange={(e) => setNavOpen(e.detail.open)}
        ariaLabels={{ navigation: 'Side navigation', navigationClose: 'Close navigation', navigationToggle: 'Open navigation', notifications: 'Notifications' }}
        navigation={
          <>
            {logo ? (
              <div style={{ padding: '16px 24px 0' }}>
                <img className="brand-logo" src={logo} alt={`${me?.tenant_name ?? 'Tenant'} logo`} referrerPolicy="no-referrer" />
              </div>
            ) : null}
            <SideNavigation
              header={{ href: role ? `#${homeFor(role)}` : '#/sign-in', text: role === 'operator' ? 'Operator' : me?.tenant_name ?? 'raas' }}
              activeHref={activeHref}
              items={nav.map((n) => ({ type: 'link' as const, text: n.text, href: n.href }))}
            />
          </>
        }
        content={
          checking ? (
            <Spinner size="large" />
          ) : startError ? (
            <div role="alert">
              <h1>Could not reach the API</h1>
              <p>{startError}</p>
              <button type="button" onClick={() => window.location.reload()}>
                Retry
              </button>
            </div>
          ) : (
            <Suspense fallback={<Spinner size="large" />}>
              <Page />
            </Suspense>
          )
        }
      />
    </SessionContext.Provider>
    </I18nProvider>
  );
}
