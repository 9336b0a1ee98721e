// Builds the configuration form from GET /v1/config/schema: the tenant config's JSON Schema with
// the tier's bounds as minimum/maximum/maxLength/enum. Each leaf becomes one field; nested objects
// (branding, chunking, limits) become groups whose fields have dotted paths ("chunking.size").

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  definitions?: Record<string, JsonSchema>;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  maxProperties?: number;
  pattern?: string;
  default?: unknown;
  title?: string;
  description?: string;
  format?: string;
  [key: string]: unknown;
};

export type FieldKind = 'number' | 'integer' | 'boolean' | 'enum' | 'string' | 'text' | 'map';

export interface FieldSpec {
  path: string;
  group: string | null;
  name: string;
  label: string;
  kind: FieldKind;
  nullable: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  maxProperties?: number;
  pattern?: string;
  options?: string[];
  default?: unknown;
  description?: string;
}

const TEXT_FIELDS = new Set(['prompt_template']);

function resolve(node: JsonSchema, root: JsonSchema, depth = 0): JsonSchema {
  if (depth > 20) return node;
  let n = node;
  if (n.$ref) {
    const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(n.$ref);
    const defs = m ? (m[1] === '$defs' ? root.$defs : root.definitions) : undefined;
    const target = m && defs ? defs[decodeURIComponent(m[2])] : undefined;
    if (target) {
      const { $ref: _ignored, ...rest } = n;
      n = { ...resolve(target, root, depth + 1), ...rest };
    }
  }
  if (n.allOf && n.allOf.length === 1) {
    const { allOf, ...rest } = n;
    n = { ...resolve(allOf[0], root, depth + 1), ...rest };
  }
  return n;
}

/** Splits "X or null" into X and a nullable flag. */
function unwrapNullable(node: JsonSchema, root: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  const alts = node.anyOf ?? node.oneOf;
  if (alts) {
    const nonNull = alts.filter((a) => a.type !== 'null');
    const nullable = nonNull.length < alts.length;
    if (nonNull.length === 1) {
      const { anyOf: _a, oneOf: _o, ...rest } = node;
      return { schema: { ...resolve(nonNull[0], root), ...rest }, nullable };
    }
  }
  if (Array.isArray(node.type)) {
    const types = node.type.filter((t) => t !== 'null');
    return { schema: { ...node, type: types[0] }, nullable: types.length < node.type.length };
  }
  return { schema: node, nullable: false };
}

export function humanize(name: string): string {
  const words = name.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function leaf(path: string, group: string | null, name: string, node: JsonSchema, nullable: boolean): FieldSpec {
  let kind: FieldKind;
  const type = typeof node.type === 'string' ? node.type : undefined;
  if (Array.isArray(node.enum) && node.enum.every((v) => typeof v === 'string')) kind = 'enum';
  else if (type === 'boolean') kind = 'boolean';
  else if (type === 'integer') kind = 'integer';
  else if (type === 'number') kind = 'number';
  else if (type === 'object') kind = 'map';
  else kind = TEXT_FIELDS.has(name) ? 'text' : 'string';
  const spec: FieldSpec = { path, group, name, label: humanize(name), kind, nullable };
  for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'maxProperties'] as const) {
    if (typeof node[k] === 'number') spec[k] = node[k] as number;
  }
  if (typeof node.pattern === 'string') spec.pattern = node.pattern;
  if (kind === 'enum') spec.options = (node.enum as string[]).slice();
  if (kind === 'boolean' && Array.isArray(node.enum)) {
    // a tier without reranking answers enum [false]: the only allowed value
    spec.options = node.enum.map(String);
  }
  if ('default' in node) spec.default = node.default;
  if (node.description) spec.description = node.description;
  return spec;
}

/** Every editable field of the schema, in schema order; nested objects one level deep. */
export function fieldsFromSchema(schema: JsonSchema): FieldSpec[] {
  const root = resolve(schema, schema);
  const out: FieldSpec[] = [];
  for (const [name, raw] of Object.entries(root.properties ?? {})) {
    const { schema: node, nullable } = unwrapNullable(resolve(raw, schema), schema);
    if (node.type === 'object' && node.properties) {
      for (const [sub, subRaw] of Object.entries(node.properties)) {
        const { schema: subNode, nullable: subNullable } = unwrapNullable(resolve(subRaw, schema), schema);
        out.push(leaf(`${name}.${sub}`, name, sub, subNode, subNullable));
      }
    } else {
      out.push(leaf(name, null, name, node, nullable));
    }
  }
  return out;
}

export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function setPath<T extends Record<string, unknown>>(obj: T, path: string, value: unknown): T {
  const [head, ...rest] = path.split('.');
  if (rest.length === 0) return { ...obj, [head]: value };
  const child = (obj[head] && typeof obj[head] === 'object' ? obj[head] : {}) as Record<string, unknown>;
  return { ...obj, [head]: setPath(child, rest.join('.'), value) };
}

/** Turns the text of an input into the field's value, or an error message. */
export function parseInput(spec: FieldSpec, text: string): { value: unknown; error: string | null } {
  if (spec.kind === 'integer' || spec.kind === 'number') {
    const t = text.trim();
    if (t === '') return spec.nullable ? { value: null, error: null } : { value: null, error: 'a value is required' };
    const n = Number(t);
    if (!Number.isFinite(n)) return { value: text, error: 'enter a number' };
    if (spec.kind === 'integer' && !Number.isInteger(n)) return { value: n, error: 'enter a whole number' };
    return { value: n, error: validateValue(spec, n) };
  }
  if (spec.kind === 'string' && spec.nullable && text === '') return { value: null, error: null };
  return { value: text, error: validateValue(spec, text) };
}

/** The schema's own bounds, checked as the user types (the API's answer still has the last word). */
export function validateValue(spec: FieldSpec, value: unknown): string | null {
  if (value === null || value === undefined) return spec.nullable ? null : 'a value is required';
  if (spec.kind === 'integer' || spec.kind === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value)) return 'enter a number';
    if (spec.kind === 'integer' && !Number.isInteger(value)) return 'enter a whole number';
    if (spec.minimum !== undefined && value < spec.minimum) return `must be at least ${spec.minimum}`;
    if (spec.maximum !== undefined && value > spec.maximum) return `must be at most ${spec.maximum}`;
    if (spec.exclusiveMinimum !== undefined && value <= spec.exclusiveMinimum) return `must be greater than ${spec.exclusiveMinimum}`;
    if (spec.exclusiveMaximum !== undefined && value >= spec.exclusiveMaximum) return `must be less than ${spec.exclusiveMaximum}`;
    return null;
  }
  if (spec.kind === 'enum') {
    return spec.options && !spec.options.includes(String(value)) ? `must be one of: ${spec.options.join(', ')}` : null;
  }
  if (spec.kind === 'boolean') {
    if (typeof value !== 'boolean') return 'must be true or false';
    if (spec.options && !spec.options.includes(String(value))) return `this tier allows only ${spec.options.join(' or ')}`;
    return null;
  }
  if (spec.kind === 'string' || spec.kind === 'text') {
    if (typeof value !== 'string') return 'must be text';
    if (spec.minLength !== undefined && value.length < spec.minLength) return `must be at least ${spec.minLength} characters`;
    if (spec.maxLength !== undefined && value.length > spec.maxLength) return `must be at most ${spec.maxLength} characters`;
    if (spec.pattern) {
      try {
        if (!new RegExp(spec.pattern, 'u').test(value)) return `does not match ${spec.pattern}`;
      } catch {
        // a pattern JavaScript cannot compile: leave it to the API
      }
    }
    return null;
  }
  if (spec.kind === 'map') {
    if (typeof value !== 'object' || Array.isArray(value)) return 'must be a set of names and values';
    if (spec.maxProperties !== undefined && Object.keys(value).length > spec.maxProperties) return `at most ${spec.maxProperties} entries`;
    return null;
  }
  return null;
}

/** Checks every field of a config against the schema; keyed by path. */
export function validateConfig(fields: FieldSpec[], config: Record<string, unknown>): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const v = getPath(config, f.path);
    if (v === undefined) continue;
    const e = validateValue(f, v);
    if (e) errors[f.path] = e;
  }
  return errors;
}

/** A hint such as "1–10" for a field's bounds. */
export function boundsHint(spec: FieldSpec): string | undefined {
  if (spec.kind === 'integer' || spec.kind === 'number') {
    const lo = spec.minimum ?? spec.exclusiveMinimum;
    const hi = spec.maximum ?? spec.exclusiveMaximum;
    if (lo !== undefined && hi !== undefined) return `${lo}–${hi}`;
    if (lo !== undefined) return `at least ${lo}`;
    if (hi !== undefined) return `at most ${hi}`;
  }
  if ((spec.kind === 'string' || spec.kind === 'text') && spec.maxLength !== undefined) return `up to ${spec.maxLength} characters`;
  return undefined;
}

/** Parses "name=value" lines (prompt variables) and reports the first malformed line. */
export function parseVariables(text: string): { value: Record<string, string>; error: string | null } {
  const value: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.trim()) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return { value, error: `line ${i + 1}: write name=value` };
    const name = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return { value, error: `line ${i + 1}: "${name}" is not a valid name (letters, digits, _)` };
    value[name] = line.slice(eq + 1);
  }
  return { value, error: null };
}

export function formatVariables(vars: Record<string, string> | null | undefined): string {
  return Object.entries(vars ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}
