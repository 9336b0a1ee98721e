// Side-by-side diff of two configuration versions: both are flattened to dotted paths and each
// path is compared by value (objects such as prompt_variables compare as JSON).

export type ChangeKind = 'added' | 'removed' | 'changed' | 'same';

export interface DiffRow {
  path: string;
  left: string;
  right: string;
  kind: ChangeKind;
}

const LEAF_OBJECTS = new Set(['prompt_variables']);

export function flatten(obj: unknown, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    if (prefix) out[prefix] = obj;
    return out;
  }
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !LEAF_OBJECTS.has(path)) Object.assign(out, flatten(v, path));
    else out[path] = v;
  }
  return out;
}

export function show(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v, Object.keys((v as object) ?? {}).sort());
}

function stable(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function diffConfigs(left: unknown, right: unknown, { onlyChanges = false } = {}): DiffRow[] {
  const a = flatten(left);
  const b = flatten(right);
  const paths = Array.from(new Set([...Object.keys(a), ...Object.keys(b)])).sort();
  const rows: DiffRow[] = [];
  for (const path of paths) {
    const inA = path in a;
    const inB = path in b;
    let kind: ChangeKind;
    if (inA && !inB) kind = 'removed';
    else if (!inA && inB) kind = 'added';
    else kind = stable(a[path]) === stable(b[path]) ? 'same' : 'changed';
    if (onlyChanges && kind === 'same') continue;
    rows.push({ path, left: inA ? show(a[path]) : '', right: inB ? show(b[path]) : '', kind });
  }
  return rows;
}

/** The fields a merge save sends: only what differs from the current config (nested objects field by field). */
export function mergePatch(current: Record<string, unknown>, draft: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(draft)) {
    const cur = current[k];
    const isObj = v !== null && typeof v === 'object' && !Array.isArray(v);
    if (isObj && !LEAF_OBJECTS.has(k) && cur !== null && typeof cur === 'object') {
      const sub = mergePatch(cur as Record<string, unknown>, v as Record<string, unknown>);
      if (Object.keys(sub).length) patch[k] = sub;
    } else if (stable(v) !== stable(cur)) {
      patch[k] = v;
    }
  }
  return patch;
}

/** Line diff (longest common subsequence) for multi-line values such as prompt templates. */
export function lineDiff(left: string, right: string): { kind: 'same' | 'removed' | 'added'; text: string }[] {
  const a = left.split('\n');
  const b = right.split('\n');
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: { kind: 'same' | 'removed' | 'added'; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ kind: 'same', text: a[i] });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ kind: 'removed', text: a[i++] });
    else out.push({ kind: 'added', text: b[j++] });
  }
  while (i < n) out.push({ kind: 'removed', text: a[i++] });
  while (j < m) out.push({ kind: 'added', text: b[j++] });
  return out;
}
