import { describe, expect, it } from 'vitest';
import fixture from './fixtures/config-schema.json';
import { boundsHint, fieldsFromSchema, formatVariables, getPath, parseInput, parseVariables, setPath, validateConfig, validateValue, type JsonSchema } from './schemaForm';

const fields = fieldsFromSchema(fixture.schema as JsonSchema);
const field = (path: string) => {
  const f = fields.find((x) => x.path === path);
  if (!f) throw new Error(`no field ${path}`);
  return f;
};

describe('fieldsFromSchema', () => {
  it('makes one field per leaf, nested objects with dotted paths', () => {
    expect(fields.map((f) => f.path)).toEqual([
      'model',
      'temperature',
      'top_k',
      'alpha',
      'max_tokens',
      'enable_reranking',
      'prompt_template',
      'prompt_variables',
      'branding.primary_color',
      'branding.secondary_color',
      'branding.logo_url',
      'chunking.strategy',
      'chunking.size',
      'chunking.overlap',
      'limits.monthly_queries',
      'limits.monthly_cost_usd',
      'limits.requests_per_second',
    ]);
  });

  it("carries the tier's bounds", () => {
    expect(field('top_k')).toMatchObject({ kind: 'integer', minimum: 1, maximum: 5, label: 'Top k' });
    expect(field('temperature')).toMatchObject({ kind: 'number', minimum: 0, maximum: 2 });
    expect(field('model')).toMatchObject({ kind: 'enum', options: ['gpt-3.5-turbo', 'gpt-4o-mini'] });
    expect(field('enable_reranking')).toMatchObject({ kind: 'boolean', options: ['false'] });
    expect(field('chunking.strategy')).toMatchObject({ kind: 'enum', group: 'chunking', default: 'structure' });
    expect(field('prompt_template').kind).toBe('text');
    expect(field('prompt_variables').kind).toBe('map');
  });

  it('unwraps "X or null" into a nullable X', () => {
    expect(field('branding.logo_url')).toMatchObject({ kind: 'string', nullable: true, maxLength: 2048 });
    expect(field('limits.monthly_queries')).toMatchObject({ kind: 'integer', nullable: true, minimum: 0 });
    expect(field('top_k').nullable).toBe(false);
  });

  it('resolves $ref through allOf and type arrays', () => {
    const s: JsonSchema = {
      $defs: { Size: { type: 'integer', minimum: 3 } },
      properties: { a: { allOf: [{ $ref: '#/$defs/Size' }], default: 4 }, b: { type: ['number', 'null'], maximum: 9 } },
    };
    const f = fieldsFromSchema(s);
    expect(f[0]).toMatchObject({ path: 'a', kind: 'integer', minimum: 3, default: 4 });
    expect(f[1]).toMatchObject({ path: 'b', kind: 'number', nullable: true, maximum: 9 });
  });
});

describe('validation against the bounds', () => {
  it('refuses values outside the tier', () => {
    expect(validateValue(field('top_k'), 6)).toBe('must be at most 5');
    expect(validateValue(field('top_k'), 0)).toBe('must be at least 1');
    expect(validateValue(field('top_k'), 2.5)).toBe('enter a whole number');
    expect(validateValue(field('top_k'), 5)).toBeNull();
    expect(validateValue(field('model'), 'gpt-4o')).toBe('must be one of: gpt-3.5-turbo, gpt-4o-mini');
    expect(validateValue(field('enable_reranking'), true)).toBe('this tier allows only false');
    expect(validateValue(field('enable_reranking'), false)).toBeNull();
    expect(validateValue(field('branding.logo_url'), null)).toBeNull();
    expect(validateValue(field('branding.logo_url'), 'x'.repeat(2049))).toBe('must be at most 2048 characters');
  });

  it('parses typed text', () => {
    expect(parseInput(field('temperature'), '0.25')).toEqual({ value: 0.25, error: null });
    expect(parseInput(field('temperature'), '3')).toEqual({ value: 3, error: 'must be at most 2' });
    expect(parseInput(field('temperature'), 'abc').error).toBe('enter a number');
    expect(parseInput(field('temperature'), '').error).toBe('a value is required');
    expect(parseInput(field('limits.monthly_queries'), '')).toEqual({ value: null, error: null });
    expect(parseInput(field('branding.logo_url'), '')).toEqual({ value: null, error: null });
  });

  it('checks a whole config', () => {
    expect(validateConfig(fields, { top_k: 9, temperature: 1, chunking: { size: 10 } })).toEqual({ top_k: 'must be at most 5', 'chunking.size': 'must be at least 32' });
  });

  it('describes the bounds', () => {
    expect(boundsHint(field('top_k'))).toBe('1–5');
    expect(boundsHint(field('limits.monthly_queries'))).toBe('at least 0');
    expect(boundsHint(field('branding.logo_url'))).toBe('up to 2048 characters');
  });
});

describe('paths and variables', () => {
  it('reads and writes dotted paths without mutating', () => {
    const cfg = { top_k: 5, chunking: { size: 200, overlap: 30 } };
    const next = setPath(cfg, 'chunking.size', 300);
    expect(next).toEqual({ top_k: 5, chunking: { size: 300, overlap: 30 } });
    expect(cfg.chunking.size).toBe(200);
    expect(getPath(next, 'chunking.size')).toBe(300);
    expect(getPath(next, 'nope.x')).toBeUndefined();
  });

  it('parses name=value lines', () => {
    expect(parseVariables('company=Acme Corp\n\ntone = friendly=yes')).toEqual({ value: { company: 'Acme Corp', tone: ' friendly=yes' }, error: null });
    expect(parseVariables('=x').error).toBe('line 1: write name=value');
    expect(parseVariables('a=1\n1bad=2').error).toMatch(/line 2/);
    expect(formatVariables({ a: '1', b: 'two' })).toBe('a=1\nb=two');
  });
});

describe('the schema GET /v1/config/schema answers (smb tier, captured from raas local)', () => {
  it('gives the tier-bounded form', async () => {
    const smb = (await import('./fixtures/config-schema-smb.json')).default as { tier: string; schema: JsonSchema };
    const f = fieldsFromSchema(smb.schema);
    const by = (p: string) => f.find((x) => x.path === p);
    expect(smb.tier).toBe('smb');
    expect(by('top_k')).toMatchObject({ maximum: 10 });
    expect(by('model')?.options).toContain('gpt-4o');
    expect(validateValue(by('top_k')!, 50)).toBe('must be at most 10');
    expect(validateValue(by('branding.primary_color')!, 'blue')).toMatch(/does not match/);
    expect(validateValue(by('branding.primary_color')!, '#112233')).toBeNull();
  });
});
