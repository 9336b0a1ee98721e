import { describe, expect, it } from 'vitest';
import { diffConfigs, flatten, lineDiff, mergePatch } from './diff';

const v1 = {
  model: 'gpt-3.5-turbo',
  temperature: 0.7,
  top_k: 5,
  prompt_variables: { company: 'Acme' },
  branding: { primary_color: '#6B7280', logo_url: null },
};
const v2 = {
  model: 'gpt-3.5-turbo',
  temperature: 0.2,
  top_k: 5,
  prompt_variables: { company: 'Acme', tone: 'formal' },
  branding: { primary_color: '#112233', logo_url: null },
  chunking: { size: 300 },
};

describe('diffConfigs', () => {
  it('lists changed, added and unchanged fields side by side', () => {
    const rows = diffConfigs(v1, v2);
    const byPath = Object.fromEntries(rows.map((r) => [r.path, r]));
    expect(byPath.temperature).toEqual({ path: 'temperature', left: '0.7', right: '0.2', kind: 'changed' });
    expect(byPath['branding.primary_color'].kind).toBe('changed');
    expect(byPath['branding.logo_url']).toEqual({ path: 'branding.logo_url', left: 'null', right: 'null', kind: 'same' });
    expect(byPath['chunking.size']).toEqual({ path: 'chunking.size', left: '', right: '300', kind: 'added' });
    expect(byPath.prompt_variables.kind).toBe('changed');
    expect(byPath.model.kind).toBe('same');
  });

  it('can show only changes, and is symmetric in kind', () => {
    const changed = diffConfigs(v1, v2, { onlyChanges: true }).map((r) => r.path);
    expect(changed).toEqual(['branding.primary_color', 'chunking.size', 'prompt_variables', 'temperature']);
    expect(diffConfigs(v2, v1, { onlyChanges: true }).find((r) => r.path === 'chunking.size')?.kind).toBe('removed');
    expect(diffConfigs(v1, v1, { onlyChanges: true })).toEqual([]);
  });

  it('compares maps regardless of key order', () => {
    expect(diffConfigs({ prompt_variables: { a: '1', b: '2' } }, { prompt_variables: { b: '2', a: '1' } }, { onlyChanges: true })).toEqual([]);
  });

  it('keeps prompt_variables whole when flattening', () => {
    expect(flatten({ prompt_variables: { a: '1' }, chunking: { size: 1 } })).toEqual({ prompt_variables: { a: '1' }, 'chunking.size': 1 });
  });
});

describe('mergePatch', () => {
  it('sends only what changed, nested objects field by field', () => {
    expect(mergePatch(v1, { ...v1, temperature: 0.2, branding: { ...v1.branding, primary_color: '#000000' } })).toEqual({
      temperature: 0.2,
      branding: { primary_color: '#000000' },
    });
    expect(mergePatch(v1, v1)).toEqual({});
  });

  it('sends prompt_variables whole (a removed variable must go)', () => {
    expect(mergePatch(v2, { ...v2, prompt_variables: { company: 'Acme' } })).toEqual({ prompt_variables: { company: 'Acme' } });
  });
});

describe('lineDiff', () => {
  it('marks added and removed lines', () => {
    expect(lineDiff('a\nb\nc', 'a\nx\nc')).toEqual([
      { kind: 'same', text: 'a' },
      { kind: 'removed', text: 'b' },
      { kind: 'added', text: 'x' },
      { kind: 'same', text: 'c' },
    ]);
    expect(lineDiff('', 'new')).toEqual([
      { kind: 'removed', text: '' },
      { kind: 'added', text: 'new' },
    ]);
  });
});
