import { useEffect, useMemo, useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Table from '@cloudscape-design/components/table';
import Button from '@cloudscape-design/components/button';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Container from '@cloudscape-design/components/container';
import FormField from '@cloudscape-design/components/form-field';
import FileUpload from '@cloudscape-design/components/file-upload';
import ProgressBar from '@cloudscape-design/components/progress-bar';
import Select, { type SelectProps } from '@cloudscape-design/components/select';
import Input from '@cloudscape-design/components/input';
import Modal from '@cloudscape-design/components/modal';
import Box from '@cloudscape-design/components/box';
import Link from '@cloudscape-design/components/link';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import { api } from '../../api/client';
import type { DocumentItem } from '../../api/types';
import { asApiError, type ApiError } from '../../api/errors';
import { useAction, useAsync } from '../../lib/useAsync';
import { useSession } from '../../shell/session';
import { can } from '../../lib/roles';
import ErrorAlert from '../../components/ErrorAlert';
import { formatBytes, formatDate } from '../../lib/format';
import { uploadFile } from '../../lib/upload';

const STATUSES: SelectProps.Option[] = [{ value: '', label: 'Any status' }, ...['queued', 'processing', 'indexed', 'failed', 'deleting'].map((s) => ({ value: s, label: s }))];

export function docStatusType(status: string): 'pending' | 'in-progress' | 'success' | 'error' | 'stopped' {
  if (status === 'queued') return 'pending';
  if (status === 'processing' || status === 'deleting') return 'in-progress';
  if (status === 'indexed') return 'success';
  if (status === 'failed') return 'error';
  return 'stopped';
}

interface UploadRow {
  id: number;
  file: File;
  progress: number;
  state: 'waiting' | 'uploading' | 'uploaded' | 'failed';
  error?: ApiError;
  documentId?: string;
}

let nextUploadId = 1;

/** 1.5 s while things move, growing to 15 s while nothing changes. */
export function pollDelay(quietPolls: number): number {
  return Math.min(15000, Math.round(1500 * 1.4 ** quietPolls));
}

export default function Documents() {
  const { role } = useSession();
  const canWrite = can(role, 'documents.write');
  const [status, setStatus] = useState<SelectProps.Option>(STATUSES[0]);
  const [filter, setFilter] = useState('');
  const [extra, setExtra] = useState<DocumentItem[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [files, setFiles] = useState<File[]>([]);
  const [uploads, setUploads] = useState<UploadRow[]>([]);
  const [deleting, setDeleting] = useState<DocumentItem | null>(null);

  const docs = useAsync(
    async (signal) => {
      const res = await api.get<{ documents: DocumentItem[]; next_cursor: string | null }>('/v1/documents', { query: { status: status.value, limit: 100 }, signal });
      setExtra([]);
      setCursor(res.next_cursor);
      return res.documents;
    },
    [status.value],
  );
  const more = useAction(async () => {
    const res = await api.get<{ documents: DocumentItem[]; next_cursor: string | null }>('/v1/documents', { query: { status: status.value, limit: 100, cursor: cursor ?? undefined } });
    setExtra((e) => [...e, ...res.documents]);
    setCursor(res.next_cursor);
  });
  const all = [...(docs.data ?? []), ...extra];
  const items = useMemo(() => {
    const f = filter.trim().toLowerCase();
    return f ? all.filter((d) => `${d.title} ${d.filename ?? ''} ${d.document_id}`.toLowerCase().includes(f)) : all;
  }, [all, filter]);

  // Live status: poll while anything is on its way (queued → processing → indexed | failed), backing
  // off while nothing changes (each poll is a billed API call; an upload never sent stays queued).
  const pending = all.filter((d) => d.status === 'queued' || d.status === 'processing' || d.status === 'deleting');
  const signature = pending.map((d) => `${d.document_id}:${d.status}`).join(',') + uploads.map((u) => u.state).join(',');
  const busy = pending.length > 0 || uploads.some((u) => u.state === 'uploading');
  const reload = docs.reload;
  const [quietPolls, setQuietPolls] = useState(0);
  useEffect(() => setQuietPolls(0), [signature]);
  useEffect(() => {
    if (!busy) return;
    const t = setTimeout(() => {
      setQuietPolls((n) => n + 1);
      reload();
    }, pollDelay(quietPolls));
    return () => clearTimeout(t);
  }, [busy, reload, quietPolls, docs.data]);

  const update = (id: number, patch: Partial<UploadRow>) => setUploads((rows) => rows.map((r) => (r.id === id ? { ...r, ...patch } : r)));

  async function uploadOne(row: UploadRow) {
    update(row.id, { state: 'uploading', progress: 0, error: undefined });
    try {
      const ticket = await uploadFile(row.file, (p) => update(row.id, { progress: Math.round(p * 100) }));
      update(row.id, { state: 'uploaded', progress: 100, documentId: ticket.document_id });
      reload();
    } catch (e) {
      update(row.id, { state: 'failed', error: asApiError(e) });
    }
  }

  async function startUploads() {
    const rows: UploadRow[] = files.map((file) => ({ id: nextUploadId++, file, progress: 0, state: 'waiting' }));
    setUploads((u) => [...rows, ...u]);
    setFiles([]);
    // Two at a time: progress stays meaningful and the browser's connection pool is not flooded.
    const queue = [...rows];
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) await uploadOne(r);
    };
    await Promise.all([worker(), worker()]);
  }

  const del = useAction(async (d: DocumentItem) => {
    await api.del(`/v1/documents/${encodeURIComponent(d.document_id)}`);
    setDeleting(null);
    reload();
  });

  return (
    <ContentLayout header={<Header variant="h1" description="Upload files, follow their indexing, read their chunks.">Documents</Header>}>
      <SpaceBetween size="l">
        {canWrite ? (
          <Container header={<Header variant="h2" description="txt, md, html, pdf, docx, csv, json — each goes straight to storage through a presigned URL.">Upload</Header>}>
            <SpaceBetween size="m">
              <FormField label="Files">
                <FileUpload
                  multiple
                  value={files}
                  onChange={(e) => setFiles(e.detail.value)}
                  accept=".txt,.md,.html,.htm,.pdf,.docx,.csv,.json,text/*,application/pdf,application/json"
                  showFileSize
                  showFileLastModified={false}
                  tokenLimit={5}
                  i18nStrings={{
                    uploadButtonText: (multiple) => (multiple ? 'Choose files' : 'Choose file'),
                    dropzoneText: (multiple) => (multiple ? 'Drop files to upload' : 'Drop file to upload'),
                    removeFileAriaLabel: (i) => `Remove file ${i + 1}`,
                    limitShowFewer: 'Show fewer files',
                    limitShowMore: 'Show more files',
                    errorIconAriaLabel: 'Error',
                    warningIconAriaLabel: 'Warning',
                  }}
                />
              </FormField>
              <Button variant="primary" disabled={!files.length} onClick={() => void startUploads()}>
                Upload {files.length > 1 ? `${files.length} files` : 'file'}
              </Button>
              {uploads.map((u) => (
                <SpaceBetween size="xxs" key={u.id}>
                  <ProgressBar
                    label={u.file.name}
                    value={u.progress}
                    status={u.state === 'failed' ? 'error' : u.state === 'uploaded' ? 'success' : 'in-progress'}
                    resultText={u.state === 'uploaded' ? `Uploaded — ${u.documentId} is queued for indexing` : undefined}
                    description={formatBytes(u.file.size)}
                    additionalInfo={u.state === 'waiting' ? 'waiting' : undefined}
                  />
                  {u.error ? <ErrorAlert error={u.error} onRetry={() => void uploadOne(u)} header={`${u.file.name} was not uploaded`} /> : null}
                </SpaceBetween>
              ))}
            </SpaceBetween>
          </Container>
        ) : null}
        <ErrorAlert error={docs.error} onRetry={reload} />
        <Table
          wrapLines
          header={<Header variant="h2" counter={`(${all.length}${cursor ? '+' : ''})`}>Documents</Header>}
          items={items}
          loading={docs.loading && !docs.data}
          loadingText="Loading documents"
          trackBy="document_id"
          empty="No documents."
          filter={
            <SpaceBetween direction="horizontal" size="s">
              <FormField label="Filter by title">
                <Input type="search" value={filter} onChange={(e) => setFilter(e.detail.value)} placeholder="Title, file name or id" />
              </FormField>
              <FormField label="Status">
                <Select selectedOption={status} options={STATUSES} onChange={(e) => setStatus(e.detail.selectedOption)} />
              </FormField>
            </SpaceBetween>
          }
          columnDefinitions={[
            { id: 't', header: 'Title', cell: (d) => <Link href={`#/documents/${encodeURIComponent(d.document_id)}`}>{d.title || d.filename || d.document_id}</Link> },
            {
              id: 's',
              header: 'Status',
              cell: (d) => (
                <SpaceBetween size="xxs">
                  <StatusIndicator type={docStatusType(d.status)}>{d.status}</StatusIndicator>
                  {d.error ? <Box variant="small">{d.error}</Box> : null}
                </SpaceBetween>
              ),
            },
            { id: 'c', header: 'Chunks', cell: (d) => d.chunk_count },
            { id: 'b', header: 'Size', cell: (d) => formatBytes(d.size_bytes) },
            { id: 'ty', header: 'Type', cell: (d) => d.content_type },
            { id: 'cr', header: 'Added', cell: (d) => formatDate(d.created_at) },
            ...(canWrite
              ? [
                  {
                    id: 'del',
                    header: 'Delete',
                    cell: (d: DocumentItem) => (
                      <Button disabled={d.status === 'deleting'} onClick={() => setDeleting(d)} ariaLabel={`Delete ${d.title}`}>
                        Delete
                      </Button>
                    ),
                  },
                ]
              : []),
          ]}
          footer={
            cursor ? (
              <Box textAlign="center">
                <Button loading={more.busy} onClick={() => void more.run()}>
                  Load more
                </Button>
              </Box>
            ) : undefined
          }
        />
      </SpaceBetween>
      <Modal
        visible={deleting !== null}
        onDismiss={() => setDeleting(null)}
        header="Delete document?"
        footer={
          <Box float="right">
            <SpaceBetween direction="horizontal" size="xs">
              <Button variant="link" onClick={() => setDeleting(null)}>
                Cancel
              </Button>
              <Button variant="primary" loading={del.busy} onClick={() => deleting && void del.run(deleting)}>
                Delete document
              </Button>
            </SpaceBetween>
          </Box>
        }
      >
        <SpaceBetween size="s">
          <Box>"{deleting?.title}" and its chunks are removed; it stops appearing in answers at once.</Box>
          <ErrorAlert error={del.error} onRetry={() => deleting && void del.run(deleting)} requiredRole="editor" />
        </SpaceBetween>
      </Modal>
    </ContentLayout>
  );
}
