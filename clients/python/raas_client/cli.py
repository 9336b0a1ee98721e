"""The API commands of the `raas` command line, on top of the client.

`raas tenants|keys|docs|ask|usage|config ...` (the main package's `raas` hands these over, importing this
module only then) and the same commands as `raas-client ...` where only this package is installed.
They read `RAAS_URL` and `RAAS_API_KEY` (`--url` and `--api-key` override); the operator's
`tenants` commands read `RAAS_OPERATOR_KEY` first. Errors print `code: message` on stderr and exit 1;
usage errors exit 2.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from raas_client import errors
from raas_client._sync_client import Client
from raas_client.models import DeltaEvent, Document, DoneEvent, RetrievalEvent

API_COMMANDS = ("tenants", "keys", "docs", "ask", "usage", "config")


class UsageError(Exception):
    """Bad arguments found after parsing (exit 2, as argparse's own)."""


def build_parser(prog: str = "raas") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="raas API commands (RAAS_URL, RAAS_API_KEY)")
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def add_commands(commands: Any) -> None:
    """The API commands, as subcommands of `commands` (an argparse subparsers object)."""
    conn = argparse.ArgumentParser(add_help=False)
    conn.add_argument("--url", help="API URL (default: $RAAS_URL)")
    conn.add_argument("--api-key", help="API key (default: $RAAS_API_KEY; tenants commands: $RAAS_OPERATOR_KEY first)")
    conn.add_argument("--json", action="store_true", help="print the API's answer as JSON")

    tenants = commands.add_parser("tenants", help="create, list, suspend and resume tenants (operator key)").add_subparsers(
        dest="action", required=True
    )
    create = tenants.add_parser("create", parents=[conn], help="create a tenant; prints its first admin key once")
    create.add_argument("name")
    create.add_argument("--tier", default="smb", choices=["free", "smb", "midmarket", "enterprise"])
    listing = tenants.add_parser("list", parents=[conn], help="list tenants")
    listing.add_argument("--status", help="only tenants in this status (server support pending)")
    listing.add_argument("--tier", help="only tenants on this tier (server support pending)")
    listing.add_argument("--q", help="only tenants whose name matches (server support pending)")
    for action, text in (("suspend", "suspend a tenant (its keys are refused at once)"), ("resume", "lift the operator's suspension")):
        tenants.add_parser(action, parents=[conn], help=text).add_argument("tenant_id")

    keys = commands.add_parser("keys", help="create, list and revoke API keys (tenant admin)").add_subparsers(dest="action", required=True)
    key_create = keys.add_parser("create", parents=[conn], help="create a key; prints it once")
    key_create.add_argument("name")
    key_create.add_argument("--role", default="reader", choices=["admin", "editor", "reader"])
    keys.add_parser("list", parents=[conn], help="list keys (never their secrets)")
    keys.add_parser("revoke", parents=[conn], help="revoke a key at once").add_argument("key_id")

    docs = commands.add_parser("docs", help="upload and list documents").add_subparsers(dest="action", required=True)
    upload = docs.add_parser("upload", parents=[conn], help="upload files, folders (recursively) and globs; waits until indexed")
    upload.add_argument("paths", nargs="+", metavar="PATH")
    upload.add_argument("--metadata", type=_json_object, default={}, help="JSON object stored with every document")
    upload.add_argument("--concurrency", type=_positive_int, default=4, help="uploads at once (default 4)")
    upload.add_argument("--no-wait", action="store_true", help="do not wait for indexing")
    upload.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each document to index (default 300)")
    doc_list = docs.add_parser("list", parents=[conn], help="list documents")
    doc_list.add_argument("--status", choices=["queued", "processing", "indexed", "failed", "deleting"])

    ask = commands.add_parser("ask", parents=[conn], help="ask a question; the answer streams to the terminal, then its sources")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=_positive_int)
    ask.add_argument("--alpha", type=float)
    ask.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help="metadata filter (JSON value), repeatable")
    ask.add_argument("--conversation", metavar="ID", help="ask inside this conversation (follow-ups are rewritten)")

    usage = commands.add_parser("usage", parents=[conn], help="the tenant's usage for a month")
    usage.add_argument("--period", metavar="YYYY-MM", help="default: the current month")

    config = commands.add_parser("config", help="read and change the tenant's configuration").add_subparsers(dest="action", required=True)
    config.add_parser("get", parents=[conn], help="the current configuration and its version")
    config_set = config.add_parser("set", parents=[conn], help="merge update: key=value ... (dotted keys, JSON values)")
    config_set.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    config_set.add_argument("--if-match", type=int, metavar="VERSION", help="refuse (409) unless this is the current version")
    diff = config.add_parser("diff", parents=[conn], help="unified diff between two versions, a version and the current one, or a file")
    diff.add_argument("old", nargs="?", help="a version number, `current` or a JSON file (default: the previous version)")
    diff.add_argument("new", nargs="?", default="current", help="the same (default: current)")
    config.add_parser("versions", parents=[conn], help="every version, newest first")
    config.add_parser("rollback", parents=[conn], help="restore a version as a new one (0 = the defaults)").add_argument(
        "version", type=int
    )


def main(argv: Sequence[str] | None = None, *, prog: str = "raas") -> int:
    args = build_parser(prog).parse_args(argv)
    return run(args)


def run(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Runs a parsed API command; returns the exit status."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    handler = HANDLERS.get((args.command, getattr(args, "action", None)))
    if handler is None:
        print(f"{args.command}: unknown command", file=err)
        return 2
    try:
        with _client(args) as client:
            return handler(client, args, out, err)
    except UsageError as exc:
        print(f"usage error: {exc}", file=err)
        return 2
    except errors.RaasError as exc:
        print(f"{exc.code}: {exc.message}", file=err)
        for detail in exc.details:  # validation errors: which field and why (unless the message says it already)
            where = detail.get("field") or detail.get("rule") or ""
            line = f"{where}: {detail.get('message', '')}" if where else str(detail.get("message", detail))
            if line not in exc.message:
                print(f"  {line}", file=err)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130


def _client(args: argparse.Namespace) -> Client:
    url = args.url or os.environ.get("RAAS_URL")
    if not url:
        raise UsageError("no API URL: pass --url or set RAAS_URL (e.g. http://127.0.0.1:8080)")
    key = args.api_key
    if key is None and args.command == "tenants":
        key = os.environ.get("RAAS_OPERATOR_KEY")
    key = key or os.environ.get("RAAS_API_KEY")
    if not key:
        raise UsageError("no API key: pass --api-key or set RAAS_API_KEY")
    return Client(url, key)


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _json_object(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return parsed


def _dump(data: Any, out: TextIO) -> None:
    print(json.dumps(data, indent=2, default=str), file=out)


def _table(rows: list[list[str]], headers: list[str], out: TextIO) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), file=out)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


# --- tenants and keys ------------------------------------------------------------------------------


def tenants_create(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    created = client.tenants.create(args.name, args.tier)
    if args.json:
        _dump(created.model_dump(mode="json"), out)
        return 0
    print(created.api_key, file=out)  # alone on stdout: KEY=$(raas tenants create Acme)
    tenant = created.tenant
    print(
        f"Created tenant {tenant.tenant_id} ({tenant.name!r}, {tenant.tier}, {tenant.status}). "
        "The admin key above is shown this once: keep it now.",
        file=err,
    )
    return 0


def tenants_list(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    tenants = client.tenants.list(status=args.status, tier=args.tier, q=args.q).to_list()
    if args.json:
        _dump([t.model_dump(mode="json") for t in tenants], out)
        return 0
    rows = [[t.tenant_id, t.name, t.tier, t.status, t.created_at.isoformat(timespec="seconds")] for t in tenants]
    _table(rows, ["tenant_id", "name", "tier", "status", "created"], out)
    return 0


def tenants_suspend(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _show_tenant(client.tenants.suspend(args.tenant_id), args, out)


def tenants_resume(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _show_tenant(client.tenants.resume(args.tenant_id), args, out)


def _show_tenant(tenant: Any, args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        _dump(tenant.model_dump(mode="json"), out)
    else:
        reasons = f" ({', '.join(tenant.suspension_reasons)})" if tenant.suspension_reasons else ""
        print(f"{tenant.tenant_id} is {tenant.status}{reasons}", file=out)
    return 0


def keys_create(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    created = client.keys.create(args.name, args.role)
    if args.json:
        _dump(created.model_dump(mode="json"), out)
        return 0
    print(created.api_key, file=out)
    print(f"Created key {created.key.key_id} ({created.key.name!r}, {created.key.role}); it is shown this once.", file=err)
    return 0


def keys_list(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    keys = client.keys.list()
    if args.json:
        _dump([k.model_dump(mode="json") for k in keys], out)
        return 0
    rows = [
        [
            k.key_id,
            k.name,
            k.role,
            k.prefix,
            k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "-",
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-",
        ]
        for k in keys
    ]
    _table(rows, ["key_id", "name", "role", "prefix", "last used", "revoked"], out)
    return 0


def keys_revoke(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    client.keys.revoke(args.key_id)
    print(f"Revoked key {args.key_id}; it is refused from now on.", file=out)
    return 0


# --- documents -------------------------------------------------------------------------------------

GLOB_CHARS = frozenset("*?[")


def expand_paths(arguments: Sequence[str]) -> list[Path]:
    """Files named, files under folders (recursively, hidden ones skipped) and files matching globs (`**` too), once each, in order."""
    found: dict[Path, None] = {}
    for argument in arguments:
        path = Path(argument).expanduser()
        if path.is_file():
            found[path] = None
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(part.startswith(".") for part in child.relative_to(path).parts):
                    found[child] = None
        elif GLOB_CHARS & set(argument):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(argument), recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                raise UsageError(f"{argument}: no file matches")
            found.update(dict.fromkeys(files))
        else:
            raise UsageError(f"{argument}: no such file or folder")
    return list(found)


@dataclass
class UploadOutcome:
    path: Path
    document: Document | None = None
    error: errors.RaasError | None = None


def docs_upload(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    files = expand_paths(args.paths)
    sizes = {f: f.stat().st_size for f in files}
    progress = make_progress(sum(sizes.values()), len(files), err)
    outcomes: list[UploadOutcome] = []

    def one(path: Path) -> UploadOutcome:
        sent_before = 0

        def advance(sent: int, total: int) -> None:
            nonlocal sent_before
            progress.advance(sent - sent_before)  # negative when the PUT was retried from the start
            sent_before = sent

        try:
            document = client.documents.upload(path, metadata=args.metadata, progress=advance, wait=not args.no_wait, timeout=args.timeout)
        except errors.RaasError as exc:
            return UploadOutcome(path, error=exc)
        except OSError as exc:  # unreadable, or removed since it was listed: that file fails, the others go on
            return UploadOutcome(path, error=errors.RaasError(str(exc), code="file_unreadable"))
        return UploadOutcome(path, document=document)

    with progress, ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        futures = [pool.submit(one, f) for f in files]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            progress.file_done(_outcome_line(outcome))
    ordered = sorted(outcomes, key=lambda o: files.index(o.path))
    failed = [o for o in ordered if o.error]
    if args.json:
        _dump(
            [
                {"path": str(o.path), "document": o.document.model_dump(mode="json") if o.document else None}
                | ({"error": {"code": o.error.code, "message": o.error.message}} if o.error else {})
                for o in ordered
            ],
            out,
        )
    else:
        # each file was reported on stderr as it finished (or use --json for every document): stdout gets the summary
        statuses: dict[str, int] = {}
        for outcome in ordered:
            if outcome.document:
                statuses[outcome.document.status] = statuses.get(outcome.document.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        print(f"{len(ordered) - len(failed)} of {len(ordered)} uploaded ({summary or 'none'}); {len(failed)} failed", file=out)
    return 1 if failed else 0


def _outcome_line(outcome: UploadOutcome) -> str:
    if outcome.error:
        return f"FAILED  {outcome.path}  {outcome.error.code}: {outcome.error.message}"
    document = outcome.document
    if document is None:  # pragma: no cover - an outcome has one or the other
        return f"?       {outcome.path}"
    return f"{document.status:<7} {outcome.path}  {document.document_id}  {document.chunk_count} chunks"


class Progress:
    """Bytes sent over all files, on stderr: rich's bar on a terminal, plain lines otherwise."""

    def __init__(self, total_bytes: int, files: int, stream: TextIO) -> None:
        self.total, self.files, self.stream = total_bytes, files, stream
        self.done_bytes = self.done_files = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def advance(self, delta: int) -> None:
        with self._lock:
            self.done_bytes += delta

    def file_done(self, line: str) -> None:
        with self._lock:
            self.done_files += 1
            print(f"[{self.done_files}/{self.files}] {line}", file=self.stream, flush=True)


class RichProgress(Progress):
    def __init__(self, total_bytes: int, files: int, stream: TextIO) -> None:
        super().__init__(total_bytes, files, stream)
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
        )
        self._task = self._bar.add_task(f"0/{files} files", total=max(total_bytes, 1))

    def __enter__(self) -> Progress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def advance(self, delta: int) -> None:
        self._bar.advance(self._task, delta)

    def file_done(self, line: str) -> None:
        with self._lock:
            self.done_files += 1
            self._bar.update(self._task, description=f"{self.done_files}/{self.files} files")
            self._bar.console.print(line, markup=False, highlight=False)


def make_progress(total_bytes: int, files: int, stream: TextIO) -> Progress:
    if stream.isatty():
        try:
            return RichProgress(total_bytes, files, stream)
        except ImportError:  # rich is optional (`pip install raas-client[cli]`)
            pass
    return Progress(total_bytes, files, stream)


def docs_list(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    documents = client.documents.list(status=args.status).to_list()
    if args.json:
        _dump([d.model_dump(mode="json") for d in documents], out)
        return 0
    rows = [[d.document_id, d.status, str(d.chunk_count), str(d.size_bytes), d.title] for d in documents]
    _table(rows, ["document_id", "status", "chunks", "bytes", "title"], out)
    return 0


# --- answers and usage -----------------------------------------------------------------------------


def ask(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    filters = dict(_assignment(a) for a in args.filter) or None
    options: dict[str, Any] = {"top_k": args.top_k, "alpha": args.alpha, "filters": filters}
    if args.json:
        if args.conversation:
            answer: Any = client.conversations.ask(args.conversation, args.question, **options)
        else:
            answer = client.query(args.question, **options)
        _dump(answer.model_dump(mode="json"), out)
        return 0
    if args.conversation:
        events: Iterator[Any] = client.conversations.ask_stream(args.conversation, args.question, **options)
    else:
        events = client.ask_stream(args.question, **options)
    citations: list[Any] = []
    done: DoneEvent | None = None
    for event in events:
        if isinstance(event, RetrievalEvent):
            citations = event.citations
            if event.rewrite and event.rewrite != "unchanged":
                print(f"(asked as: {event.rewritten_query})", file=err)
        elif isinstance(event, DeltaEvent):
            out.write(event.text)
            out.flush()
        elif isinstance(event, DoneEvent):
            done = event
    out.write("\n")
    if citations:
        print("\nSources:", file=out)
        for number, citation in enumerate(citations, 1):
            print(f"  [{number}] {citation.title} ({citation.document_id}, score {citation.score:.2f})", file=out)
    if done is not None:
        print(
            f"\n{done.model}{' (offline)' if done.offline else ''}, config v{done.config_version}, "
            f"{done.usage.prompt_tokens}+{done.usage.completion_tokens} tokens, ${done.cost_usd:.4f}, {done.latency_ms:.0f} ms",
            file=err,
        )
    return 0


def usage(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    report = client.usage.get(args.period)
    if args.json:
        _dump(report.model_dump(mode="json"), out)
        return 0
    data = report.model_dump(mode="json")
    width = max(len(k) for k in data)
    for name, value in data.items():
        print(f"{name:<{width}}  {value}", file=out)
    return 0


# --- configuration ---------------------------------------------------------------------------------


def _assignment(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"{text!r}: expected KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw  # a bare word is a string: model=gpt-4o-mini
    return key.strip(), value


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """`a=1 b.c="x"` -> {"a": 1, "b": {"c": "x"}} (dotted keys nest; values are JSON, or strings when not JSON)."""
    patch: dict[str, Any] = {}
    for text in assignments:
        key, value = _assignment(text)
        parts = key.split(".")
        node = patch
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"{key}: {part} is set to a value and used as an object")
            node = child
        if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict):
            raise UsageError(f"{key}: already has nested fields")
        node[parts[-1]] = value
    return patch


def config_get(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    view = client.config.get()
    if args.json:
        _dump(view.model_dump(mode="json"), out)
        return 0
    print(f"# version {view.version}, by {view.updated_by} at {view.updated_at.isoformat(timespec='seconds')}", file=out)
    _dump(view.config.model_dump(mode="json"), out)
    return 0


def config_set(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    patch = parse_assignments(args.assignments)
    try:
        view = client.config.update(patch, if_match=args.if_match)
    except ValidationError as exc:  # a field the configuration does not have, or a value of the wrong type: refused before sending
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise UsageError(problems) from None
    if args.json:
        _dump(view.model_dump(mode="json"), out)
    else:
        print(f"version {view.version}: set {', '.join(sorted(_leaf_keys(patch)))}", file=out)
    return 0


def _leaf_keys(data: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _leaf_keys(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def config_diff(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    current = client.config.get()
    old_spec = args.old if args.old is not None else str(current.version - 1)
    if old_spec.lstrip("-").isdigit() and int(old_spec) < 0:
        raise UsageError("there is no version before version 0 (the defaults)")
    old_label, old = _config_at(client, old_spec, current.version, current.config.model_dump(mode="json"))
    new_label, new = _config_at(client, args.new, current.version, current.config.model_dump(mode="json"))
    lines = list(
        difflib.unified_diff(
            json.dumps(old, indent=2, sort_keys=True).splitlines(),
            json.dumps(new, indent=2, sort_keys=True).splitlines(),
            old_label,
            new_label,
            lineterm="",
        )
    )
    for line in lines:
        print(line, file=out)
    if not lines:
        print(f"no difference between {old_label} and {new_label}", file=err)
    return 0


def _config_at(client: Client, spec: str, current_version: int, current: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if spec == "current" or spec == str(current_version):
        return f"version {current_version} (current)", current
    if spec.isdigit():
        return f"version {spec}", client.config.version(int(spec)).config.model_dump(mode="json")
    path = Path(spec.removeprefix("@"))
    if not path.is_file():
        raise UsageError(f"{spec}: not a version number, `current` or a JSON file")
    try:
        loaded = json.loads(path.read_text())
    except ValueError as exc:
        raise UsageError(f"{spec}: not JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"{spec}: must hold a JSON object")
    config = loaded.get("config", loaded) if "config" in loaded and isinstance(loaded["config"], dict) else loaded
    return str(path), config


def config_versions(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    versions = client.config.versions().to_list()
    if args.json:
        _dump([v.model_dump(mode="json") for v in versions], out)
        return 0
    rows = [
        [str(v.version), v.created_at.isoformat(timespec="seconds"), v.created_by, v.mode, ", ".join(v.changed_fields)] for v in versions
    ]
    _table(rows, ["version", "created", "by", "mode", "changed"], out)
    return 0


def config_rollback(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    view = client.config.rollback(args.version)
    if args.json:
        _dump(view.model_dump(mode="json"), out)
    else:
        print(f"version {view.version}: restored version {args.version}", file=out)
    return 0


Handler = Callable[[Client, argparse.Namespace, TextIO, TextIO], int]
HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("tenants", "create"): tenants_create,
    ("tenants", "list"): tenants_list,
    ("tenants", "suspend"): tenants_suspend,
    ("tenants", "resume"): tenants_resume,
    ("keys", "create"): keys_create,
    ("keys", "list"): keys_list,
    ("keys", "revoke"): keys_revoke,
    ("docs", "upload"): docs_upload,
    ("docs", "list"): docs_list,
    ("ask", None): ask,
    ("usage", None): usage,
    ("config", "get"): config_get,
    ("config", "set"): config_set,
    ("config", "diff"): config_diff,
    ("config", "versions"): config_versions,
    ("config", "rollback"): config_rollback,
}


def console_main() -> int:
    """The `raas-client` console script (where the platform's own `raas` is not installed)."""
    return main(prog="raas-client")


if __name__ == "__main__":
    raise SystemExit(console_main())
