import { api, newIdempotencyKey } from '../api/client';
import type { UploadTicket } from '../api/types';
import { ApiError, errorFromBody } from '../api/errors';

/** A browser's idea of a file's type, or one from its extension when the browser has none. */
export function contentTypeFor(file: { name: string; type: string }): string {
  if (file.type) return file.type;
  const ext = file.name.toLowerCase().split('.').pop() ?? '';
  const byExt: Record<string, string> = {
    txt: 'text/plain',
    md: 'text/markdown',
    html: 'text/html',
    htm: 'text/html',
    pdf: 'application/pdf',
    docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    csv: 'text/csv',
    json: 'application/json',
  };
  return byExt[ext] ?? 'application/octet-stream';
}

/**
 * PUTs a file to the presigned URL with exactly the headers the ticket names (they are signed:
 * any other header, or a missing one, makes S3 refuse the request), reporting progress.
 */
export function putWithProgress(ticket: UploadTicket, file: Blob, onProgress: (fraction: number) => void, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(ticket.method || 'PUT', ticket.upload_url);
    for (const [k, v] of Object.entries(ticket.headers ?? {})) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else {
        const s3 = /<Code>([^<]+)<\/Code>[\s\S]*?<Message>([^<]*)<\/Message>/.exec(xhr.responseText ?? '');
        reject(s3 ? new ApiError(xhr.status, `s3_${s3[1]}`, s3[2]) : errorFromBody(xhr.status, xhr.responseText ?? ''));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, 'network_error', 'the upload could not reach storage; retry'));
    xhr.onabort = () => reject(new ApiError(0, 'upload_cancelled', 'the upload was cancelled'));
    signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(file);
  });
}

/** Asks for an upload ticket (POST /v1/documents/uploads) then PUTs the bytes to it. */
export async function uploadFile(file: File, onProgress: (fraction: number) => void, signal?: AbortSignal): Promise<UploadTicket> {
  const ticket = await api.post<UploadTicket>(
    '/v1/documents/uploads',
    { filename: file.name, content_type: contentTypeFor(file), size: file.size },
    { headers: { 'Idempotency-Key': newIdempotencyKey() }, signal },
  );
  await putWithProgress(ticket, file, onProgress, signal);
  return ticket;
}
