import type { Branding } from '../api/types';

// A tenant's colours theme its console (Cloudscape's runtime theming), and its logo is shown only
// from an https:// URL through an <img> (never script), with no referrer.

const HEX = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;

export function safeColor(c: string | null | undefined): string | null {
  return c && HEX.test(c) ? c : null;
}

export function safeLogoUrl(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'https:' && !u.username && !u.password ? u.href : null;
  } catch {
    return null;
  }
}

/** WCAG relative luminance of a #rgb / #rrggbb colour. */
export function luminance(hex: string): number {
  let h = hex.slice(1);
  if (h.length === 3) h = h.split('').map((c) => c + c).join('');
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(h.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/**
 * The colour if white text on it (and it as text on white) keeps WCAG AA's 4.5:1, else null: a
 * tenant's pale brand colour must not make the console unreadable, so it is not applied to text.
 */
export function readableOnWhite(c: string | null): string | null {
  return c && contrast(c, '#ffffff') >= 4.5 ? c : null;
}

let reset: (() => void) | null = null;

/** Applies (or, with null, removes) the tenant's theme. Loaded on demand: theming is not in the shell. */
export function applyBranding(branding: Branding | null | undefined): void {
  const primary = safeColor(branding?.primary_color);
  const secondary = safeColor(branding?.secondary_color);
  if (reset) {
    reset();
    reset = null;
  }
  if (!primary && !secondary) return;
  void import('@cloudscape-design/components/theming').then(({ applyTheme }) => {
    const p = readableOnWhite(primary) ?? undefined;
    const s = readableOnWhite(secondary) ?? p;
    if (!p) return;
    const { reset: r } = applyTheme({
      theme: {
        tokens: {
          colorBackgroundButtonPrimaryDefault: p,
          colorBackgroundButtonPrimaryHover: s,
          colorBorderButtonNormalDefault: p,
          colorTextButtonNormalDefault: p,
          colorTextLinkDefault: p,
          colorTextAccent: p,
          colorBorderItemFocused: p,
          colorBackgroundControlChecked: p,
        },
      },
    });
    reset = r;
  });
}
