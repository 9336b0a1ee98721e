// An incremental Server-Sent Events parser (https://html.spec.whatwg.org/multipage/server-sent-events.html):
// fed text as the fetch body reader delivers it, in chunks that may split lines or events anywhere.

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export class SseParser {
  private buffer = '';
  private eventType = '';
  private data: string[] = [];
  private id: string | undefined;
  private hasData = false;

  /** Feeds a chunk of text; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more text.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const ev = this.line(line);
      if (ev) events.push(ev);
    }
    return events;
  }

  /** Ends the stream: an event without its blank line is dropped, as the specification says. */
  end(): SseEvent[] {
    this.buffer = '';
    this.reset();
    return [];
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      if (!this.hasData) {
        this.reset();
        return null;
      }
      const ev: SseEvent = { event: this.eventType || 'message', data: this.data.join('\n') };
      if (this.id !== undefined) ev.id = this.id;
      this.reset();
      return ev;
    }
    if (line.startsWith(':')) return null; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.eventType = value;
    else if (field === 'data') {
      this.data.push(value);
      this.hasData = true;
    } else if (field === 'id' && !value.includes('\0')) this.id = value;
    return null;
  }

  private reset(): void {
    this.eventType = '';
    this.data = [];
    this.hasData = false;
  }
}

/** Reads a fetch Response body as SSE events. */
export async function* readSse(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      if (signal?.aborted) return;
      const { value, done } = await reader.read();
      if (done) {
        for (const ev of parser.push(decoder.decode() + '\n')) yield ev;
        parser.end();
        return;
      }
      for (const ev of parser.push(decoder.decode(value, { stream: true }))) yield ev;
    }
  } finally {
    reader.releaseLock();
  }
}
