import { useEffect, useMemo, useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import SpaceBetween from '@cloudscape-design/components/space-between';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import FormField from '@cloudscape-design/components/form-field';
import Input from '@cloudscape-design/components/input';
import Textarea from '@cloudscape-design/components/textarea';
import Select from '@cloudscape-design/components/select';
import Toggle from '@cloudscape-design/components/toggle';
import Button from '@cloudscape-design/components/button';
import Modal from '@cloudscape-design/components/modal';
import Box from '@cloudscape-design/components/box';
import Alert from '@cloudscape-design/components/alert';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import Spinner from '@cloudscape-design/components/spinner';
import { api } from '../../api/client';
import type { ConfigView, TenantConfig } from '../../api/types';
import { ApiError, asApiError, fieldErrors, templateRules } from '../../api/errors';
import { useAsync } from '../../lib/useAsync';
import { useSession } from '../../shell/session';
import { can } from '../../lib/roles';
import ErrorAlert from '../../components/ErrorAlert';
import RoleNotice from '../../components/RoleNotice';
import {
  boundsHint,
  fieldsFromSchema,
  formatVariables,
  getPath,
  parseInput,
  parseVariables,
  setPath,
  validateValue,
  type FieldSpec,
  type JsonSchema,
} from '../../lib/schemaForm';
import { mergePatch, show } from '../../lib/diff';
import { safeColor, safeLogoUrl } from '../../shell/branding';
import { rememberConfig } from '../../lib/versionCache';

type Draft = Record<string, unknown>;

const GROUP_TITLES: Record<string, string> = {
  '': 'Model and retrieval',
  chunking: 'Chunking',
  limits: 'Your own limits',
};

function FieldInput({
  spec,
  value,
  text,
  readOnly,
  onText,
  onValue,
}: {
  spec: FieldSpec;
  value: unknown;
  text: string | undefined;
  readOnly: boolean;
  onText: (t: string) => void;
  onValue: (v: unknown) => void;
}) {
  if (spec.kind === 'enum') {
    const v = value === null || value === undefined ? '' : String(value);
    const options = (spec.options ?? []).map((o) => ({ value: o, label: o }));
    if (v && !spec.options?.includes(v)) options.unshift({ value: v, label: `${v} (not allowed by the tier)` });
    return <Select disabled={readOnly} selectedOption={v ? { value: v, label: v } : null} options={options} onChange={(e) => onValue(e.detail.selectedOption.value)} />;
  }
  if (spec.kind === 'boolean') {
    const fixed = spec.options && spec.options.length === 1;
    return (
      <Toggle disabled={readOnly || Boolean(fixed && value === (spec.options?.[0] === 'true'))} checked={Boolean(value)} onChange={(e) => onValue(e.detail.checked)}>
        {value ? 'On' : 'Off'}
      </Toggle>
    );
  }
  if (spec.kind === 'text') {
    return <Textarea readOnly={readOnly} rows={10} value={typeof value === 'string' ? value : ''} onChange={(e) => onValue(e.detail.value)} spellcheck={false} />;
  }
  if (spec.kind === 'map') {
    return (
      <Textarea
        readOnly={readOnly}
        rows={4}
        value={text ?? formatVariables(value as Record<string, string>)}
        onChange={(e) => onText(e.detail.value)}
        placeholder="company=Acme Corp"
        spellcheck={false}
      />
    );
  }
  const shown = text ?? (value === null || value === undefined ? '' : String(value));
  return (
    <Input
      readOnly={readOnly}
      type={spec.kind === 'integer' || spec.kind === 'number' ? 'number' : 'text'}
      inputMode={spec.kind === 'integer' ? 'numeric' : spec.kind === 'number' ? 'decimal' : undefined}
      step={spec.kind === 'number' ? 0.01 : undefined}
      value={shown}
      placeholder={spec.nullable ? (spec.group === 'limits' ? 'none (the tier’s own)' : 'none') : undefined}
      onChange={(e) => onText(e.detail.value)}
    />
  );
}

function BrandingPreview({ draft, name }: { draft: Draft; name: string }) {
  const primary = safeColor(getPath(draft, 'branding.primary_color') as string) ?? '#6B7280';
  const secondary = safeColor(getPath(draft, 'branding.secondary_color') as string) ?? '#9CA3AF';
  const logoText = getPath(draft, 'branding.logo_url') as string | null;
  const logo = safeLogoUrl(logoText);
  return (
    <div aria-label="Branding preview" role="region" style={{ border: `2px solid ${secondary}`, borderRadius: 8, overflow: 'hidden' }}>
      <div style={{ background: primary, color: '#fff', padding: '12px 16px', display: 'flex', alignItems: 'center', gap: 12 }}>
        {logo ? <img className="brand-logo" src={logo} alt={`${name} logo (preview)`} referrerPolicy="no-referrer" /> : null}
        <strong>{name} console</strong>
      </div>
      <div style={{ padding: 16, background: '#fff', color: '#000' }}>
        <span style={{ display: 'inline-block', background: primary, color: '#fff', borderRadius: 16, padding: '4px 16px' }}>Primary button</span>{' '}
        <span style={{ display: 'inline-block', border: `2px solid ${secondary}`, borderRadius: 16, padding: '2px 14px' }}>Secondary</span>
        {logoText && !logo ? <p>The logo is not shown: its URL must start with https://.</p> : null}
      </div>
    </div>
  );
}

export default function Configuration() {
  const { me, role, refreshMe } = useSession();
  const canValidate = can(role, 'config.validate');
  const canSave = can(role, 'config.write');
  const schema = useAsync((signal) => api.get<{ tier: string; schema: JsonSchema }>('/v1/config/schema', { signal }), []);
  const current = useAsync(async (signal) => {
    const view = await api.get<ConfigView>('/v1/config', { signal });
    rememberConfig(view);
    return view;
  }, []);
  const fields = useMemo(() => (schema.data ? fieldsFromSchema(schema.data.schema) : []), [schema.data]);

  const [draft, setDraft] = useState<Draft | null>(null);
  const [texts, setTexts] = useState<Record<string, string>>({});
  const [localErrors, setLocalErrors] = useState<Record<string, string>>({});
  const [checking, setChecking] = useState(false);
  const [check, setCheck] = useState<{ valid: boolean; prompt_preview?: string; error?: ApiError } | null>(null);
  const [saveError, setSaveError] = useState<ApiError | null>(null);
  const [saving, setSaving] = useState<'merge' | 'replace' | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [confirmReplace, setConfirmReplace] = useState(false);

  // The draft starts from the current config and survives failed saves and retries.
  useEffect(() => {
    if (current.data && draft === null) setDraft(current.data.config as unknown as Draft);
  }, [current.data, draft]);

  const base = (current.data?.config ?? {}) as unknown as Draft;
  const patch = useMemo(() => (draft ? mergePatch(base, draft) : {}), [base, draft]);
  const dirty = Object.keys(patch).length > 0;
  const hasLocalErrors = Object.values(localErrors).some(Boolean);

  // Live check: the API validates the patch as PATCH would and renders the template; nothing is saved.
  const patchKey = JSON.stringify(patch);
  useEffect(() => {
    if (!canValidate || !draft) return;
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      setChecking(true);
      api
        .post<{ valid: boolean; config: TenantConfig; prompt_preview: string }>('/v1/config/validate', patch, { signal: ctl.signal })
        .then((r) => setCheck({ valid: r.valid, prompt_preview: r.prompt_preview }))
        .catch((e) => {
          if (!ctl.signal.aborted) setCheck({ valid: false, error: asApiError(e) });
        })
        .finally(() => {
          if (!ctl.signal.aborted) setChecking(false);
        });
    }, 400);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [patchKey, canValidate, draft === null]);

  const checkError = check?.error && check.error.status === 422 ? check.error : null;
  // An invalid value is refused in the form: by the schema's bounds as the user types, then by the
  // API's own check (the same 422 a save would get, with its message next to the field).
  const blocked = hasLocalErrors || checkError !== null;
  const apiErrors = { ...fieldErrors(checkError), ...fieldErrors(saveError) };
  const rules = templateRules(saveError?.code === 'invalid_prompt_template' ? saveError : checkError);

  function setValue(spec: FieldSpec, value: unknown) {
    setDraft((d) => setPath(d ?? {}, spec.path, value));
    setLocalErrors((e) => ({ ...e, [spec.path]: validateValue(spec, value) ?? '' }));
    setSaved(null);
  }

  function setText(spec: FieldSpec, text: string) {
    setTexts((t) => ({ ...t, [spec.path]: text }));
    setSaved(null);
    if (spec.kind === 'map') {
      const { value, error } = parseVariables(text);
      setLocalErrors((e) => ({ ...e, [spec.path]: error ?? validateValue(spec, value) ?? '' }));
      if (!error) setDraft((d) => setPath(d ?? {}, spec.path, value));
      return;
    }
    const { value, error } = parseInput(spec, text);
    setLocalErrors((e) => ({ ...e, [spec.path]: error ?? '' }));
    // A well-formed value outside the bounds still goes to the live check, so the form shows the
    // API's own message for it; text that is not a number at all stays out of the draft.
    const wellFormed = spec.kind === 'integer' || spec.kind === 'number' ? typeof value === 'number' || value === null : true;
    if (wellFormed) setDraft((d) => setPath(d ?? {}, spec.path, value));
  }

  async function save(mode: 'merge' | 'replace') {
    if (!draft || !current.data) return;
    setSaving(mode);
    setSaveError(null);
    try {
      const headers = { 'If-Match': String(current.data.version) };
      const res = mode === 'merge' ? await api.patch<ConfigView>('/v1/config', patch, { headers }) : await api.put<ConfigView>('/v1/config', patch, { headers });
      rememberConfig(res);
      current.setData(res);
      setDraft(res.config as unknown as Draft);
      setTexts({});
      setLocalErrors({});
      setSaved(`Saved as version ${res.version} (${mode}).`);
      setConfirmReplace(false);
      if ('branding' in patch || mode === 'replace') void refreshMe();
    } catch (e) {
      setSaveError(asApiError(e));
    } finally {
      setSaving(null);
    }
  }

  const readOnly = !canValidate;
  const errorFor = (path: string) => apiErrors[path] || localErrors[path] || undefined;
  const resetFields = fields
    .filter((f) => !(f.path in patch) && !(f.group && patch[f.group] && (f.name in (patch[f.group] as object))))
    .filter((f) => 'default' in f && show(getPath(base, f.path)) !== show(f.default))
    .map((f) => f.path);

  if (!draft || !schema.data) {
    return (
      <ContentLayout header={<Header variant="h1">Configuration</Header>}>
        <SpaceBetween size="m">
          <ErrorAlert error={schema.error} onRetry={schema.reload} />
          <ErrorAlert error={current.error} onRetry={current.reload} />
          {schema.loading || current.loading ? <Spinner size="large" /> : null}
        </SpaceBetween>
      </ContentLayout>
    );
  }

  const groups = ['', 'chunking', 'limits'];
  const prompt = fields.filter((f) => f.path === 'prompt_template' || f.path === 'prompt_variables');
  const branding = fields.filter((f) => f.group === 'branding');
  const renderField = (f: FieldSpec) => (
    <FormField
      key={f.path}
      label={f.label}
      description={f.description}
      constraintText={boundsHint(f)}
      errorText={errorFor(f.path)}
      stretch={f.kind === 'text' || f.kind === 'map'}
    >
      <FieldInput spec={f} value={getPath(draft, f.path)} text={texts[f.path]} readOnly={readOnly} onText={(t) => setText(f, t)} onValue={(v) => setValue(f, v)} />
    </FormField>
  );

  return (
    <ContentLayout
      header={
        <Header
          variant="h1"
          description={`Version ${current.data?.version} · tier ${schema.data.tier} bounds apply${dirty ? ' · unsaved changes' : ''}`}
          actions={
            canSave ? (
              <SpaceBetween direction="horizontal" size="xs">
                <Button disabled={!dirty || blocked || saving !== null} onClick={() => setConfirmReplace(true)}>
                  Replace save
                </Button>
                <Button variant="primary" disabled={!dirty || blocked || saving !== null} loading={saving === 'merge'} onClick={() => void save('merge')}>
                  Save
                </Button>
              </SpaceBetween>
            ) : undefined
          }
        >
          Configuration
        </Header>
      }
    >
      <SpaceBetween size="l">
        {!canSave ? <RoleNotice needed="admin" what="Saving the configuration" /> : null}
        {saved ? (
          <Alert type="success" dismissible onDismiss={() => setSaved(null)}>
            {saved}
          </Alert>
        ) : null}
        <ErrorAlert error={saveError} onRetry={() => void save(saving ?? 'merge')} requiredRole="admin" />
        {saveError?.code === 'version_conflict' ? (
          <Alert type="warning" action={<Button onClick={() => current.reload()}>Load the latest version</Button>}>
            Someone saved a newer version. Load it, then apply your change again (your edits stay in the form).
          </Alert>
        ) : null}
        {check?.error && check.error.status !== 422 ? <ErrorAlert error={check.error} header="The live check did not run" /> : null}
        {groups.map((g) => (
          <Container key={g} header={<Header variant="h2">{GROUP_TITLES[g]}</Header>}>
            <ColumnLayout columns={2}>{fields.filter((f) => (f.group ?? '') === g && f.path !== 'prompt_template' && f.path !== 'prompt_variables').map(renderField)}</ColumnLayout>
          </Container>
        ))}
        <Container
          header={
            <Header variant="h2" description="Placeholders: {query} (required), {context} and your prompt variables. Checked live against the API's rules.">
              Prompt template
            </Header>
          }
        >
          <SpaceBetween size="m">
            {prompt.map(renderField)}
            {canValidate ? (
              <SpaceBetween size="s">
                {checking ? (
                  <StatusIndicator type="loading">Checking</StatusIndicator>
                ) : check?.valid ? (
                  <StatusIndicator type="success">The template passes every rule</StatusIndicator>
                ) : checkError ? (
                  <StatusIndicator type="error">
                    Live check: {checkError.code}: {checkError.message}
                  </StatusIndicator>
                ) : null}
                {rules.length ? (
                  <Alert type="error" header="Template rules broken">
                    <ul>
                      {rules.map((r, i) => (
                        <li key={i}>
                          <code>{r.rule}</code>: {r.message}
                        </li>
                      ))}
                    </ul>
                  </Alert>
                ) : null}
                {check?.prompt_preview ? (
                  <FormField label="Rendered preview" description="With your prompt variables and a sample question and context." stretch>
                    <Box variant="code">
                      <div className="pre-wrap" data-testid="prompt-preview">
                        {check.prompt_preview}
                      </div>
                    </Box>
                  </FormField>
                ) : null}
              </SpaceBetween>
            ) : (
              <RoleNotice needed="editor" what="Checking templates live" />
            )}
          </SpaceBetween>
        </Container>
        <Container header={<Header variant="h2" description="Your colours and logo theme this console for every user of your tenant.">Branding</Header>}>
          <ColumnLayout columns={2}>
            <SpaceBetween size="m">{branding.map(renderField)}</SpaceBetween>
            <BrandingPreview draft={draft} name={me?.tenant_name ?? 'Your'} />
          </ColumnLayout>
        </Container>
      </SpaceBetween>
      <Modal
        visible={confirmReplace}
        onDismiss={() => setConfirmReplace(false)}
        header="Replace the configuration?"
        footer={
          <Box float="right">
            <SpaceBetween direction="horizontal" size="xs">
              <Button variant="link" onClick={() => setConfirmReplace(false)}>
                Cancel
              </Button>
              <Button variant="primary" loading={saving === 'replace'} onClick={() => void save('replace')}>
                Replace
              </Button>
            </SpaceBetween>
          </Box>
        }
      >
        <SpaceBetween size="s">
          <Box>A replace save keeps only the fields you changed ({Object.keys(patch).join(', ') || 'none'}); every other field goes back to its default.</Box>
          {resetFields.length ? (
            <Alert type="warning" header="These fields will reset to their defaults">
              {resetFields.join(', ')}
            </Alert>
          ) : null}
          <ErrorAlert error={saveError} onRetry={() => void save('replace')} />
        </SpaceBetween>
      </Modal>
    </ContentLayout>
  );
}
