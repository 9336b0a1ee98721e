"""Time to the first streamed token: `raas local` over HTTP, the model a loopback fake that streams.

    python bench/streaming.py [--queries 30] [--documents 20] [--token-ms 20]

Starts `raas local` as its own process (as bench/load.py does: moto, embedded search, offline MiniLM)
with its OpenAI provider pointed at a fake in this process that streams chat completions as Server-Sent
Events, the way the API does (`stream_options.include_usage`: usage in the last chunk), one token every
`--token-ms`. For each question (distinct, so none comes from the answer cache) it reads the answer with
`Accept: text/event-stream` and takes, from sending the request:

- retrieval: until the `retrieval` event (authorizer, config, embedding, search, prompt, quota reservation);
- first delta: until the first `delta` event (the above, then the model's first token through the SDK).

Target (issue 14): first delta <= retrieval + 50 ms. Prints p50/p95 of both and of their difference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import OPERATOR_KEY, WORDS, percentile, start_platform


def fake_openai(token_seconds: float) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-3.5-turbo"}
            try:
                for index in range(40):
                    delta = {"role": "assistant", "content": f" token{index}"}
                    chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(token_seconds)
                usage = {**base, "choices": [], "usage": {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340}}
                self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
            except OSError:
                pass
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--token-ms", type=float, default=20.0)
    args = parser.parse_args()

    provider, provider_url = fake_openai(args.token_ms / 1000)
    os.environ.update({"RAAS_OPENAI_API_KEY": "sk-bench", "RAAS_OPENAI_BASE_URL": f"{provider_url}/v1", "RAAS_LLM_MAX_RETRIES": "0"})
    process, url = start_platform()
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            created = http.post(
                "/v1/tenants", json={"name": "stream", "tier": "enterprise"}, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
            )
            created.raise_for_status()
            auth = {"Authorization": f"Bearer {created.json()['api_key']}"}
            for number in range(args.documents):
                text = " ".join(WORDS[(number + i) % len(WORDS)] for i in range(40)) + f" document {number}"
                http.post("/v1/documents", json={"title": f"doc {number}", "text": text}, headers=auth).raise_for_status()
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                documents = http.get("/v1/documents?limit=100", headers=auth).json()["documents"]
                if len(documents) == args.documents and all(d["status"] == "indexed" for d in documents):
                    break
                time.sleep(0.5)
            retrieval_ms: list[float] = []
            first_delta_ms: list[float] = []
            for number in range(args.queries + 3):  # the first three warm the containers up and are not counted
                question = f"{WORDS[number % len(WORDS)]} {WORDS[(number * 5 + 1) % len(WORDS)]} question {number}"
                started = time.perf_counter()
                seen_retrieval = seen_delta = 0.0
                with http.stream("POST", "/v1/query", json={"query": question}, headers={**auth, "Accept": "text/event-stream"}) as reply:
                    reply.raise_for_status()
                    for line in reply.iter_lines():
                        if line == "event: retrieval" and not seen_retrieval:
                            seen_retrieval = time.perf_counter() - started
                        elif line == "event: delta" and not seen_delta:
                            seen_delta = time.perf_counter() - started
                if number >= 3:
                    retrieval_ms.append(seen_retrieval * 1000)
                    first_delta_ms.append(seen_delta * 1000)
        gaps = [d - r for d, r in zip(first_delta_ms, retrieval_ms, strict=True)]
        print(f"{args.queries} streamed queries, fake model streaming one token every {args.token_ms:g} ms")
        for name, values in (("retrieval event", retrieval_ms), ("first delta", first_delta_ms), ("first delta - retrieval", gaps)):
            print(
                f"  {name:<24} p50 {percentile(values, 0.5):7.1f} ms   p95 {percentile(values, 0.95):7.1f} ms   max {max(values):7.1f} ms"
            )
        met = percentile(gaps, 0.95) <= 50
        print(f"  target first delta <= retrieval + 50 ms (p95): {'met' if met else 'NOT met'}")
    finally:
        process.terminate()
        process.wait(30)
        provider.shutdown()


if __name__ == "__main__":
    main()
