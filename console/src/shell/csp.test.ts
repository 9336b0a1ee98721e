import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The console is served with script-src 'self' (no 'unsafe-inline', no eval): index.html may load
// scripts only by src. The built index.html is checked by bench/console_bundle.py's caller too.
describe('index.html', () => {
  it('has no inline script', () => {
    const html = readFileSync(new URL('../../index.html', import.meta.url), 'utf8');
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc=/);
      expect(body.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+=/i);
  });
});
