"""The `raas` API commands as a user runs them: real subprocesses against `raas local`, configured by
RAAS_URL / RAAS_API_KEY / RAAS_OPERATOR_KEY (and flags), exit 0 on success, 1 with `code: message` on
an API error, 2 on a usage error."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from raas import cli
from tests.e2e.conftest import LocalServer

pytestmark = pytest.mark.e2e


@dataclass
class Run:
    code: int
    out: str
    err: str


def raas(*args: str, env: dict[str, str], process: bool = False) -> Run:
    """`raas ARGS` with `env` as the whole environment: in this process (the same `main` the console
    script calls, without an interpreter start per command) or, with `process`, as a real subprocess."""
    if process:
        done = subprocess.run([sys.executable, "-m", "raas.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False)
        return Run(done.returncode, done.stdout, done.stderr)
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse's usage errors and --help
            code = exc.code if isinstance(exc.code, int) else 1
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def base_env(local_server: LocalServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAAS_")}
    return {**env, "RAAS_URL": local_server.url, "RAAS_OPERATOR_KEY": local_server.operator_key}


@pytest.fixture(scope="module")
def tenant_env(base_env: dict[str, str]) -> dict[str, str]:
    created = raas("tenants", "create", "CLI tenant", "--tier", "enterprise", env=base_env, process=True)
    assert created.code == 0, created.err
    key = created.out.strip()
    assert key.startswith("raas_")
    assert "shown this once" in created.err
    return {**base_env, "RAAS_API_KEY": key}


def test_operator_commands(base_env: dict[str, str], tenant_env: dict[str, str]) -> None:
    listed = raas("tenants", "list", "--json", env=base_env)
    assert listed.code == 0, listed.err
    tenant = next(t for t in json.loads(listed.out) if t["name"] == "CLI tenant")
    table = raas("tenants", "list", "--tier", "enterprise", env=base_env)
    assert table.out.splitlines()[0].split() == ["TENANT_ID", "NAME", "TIER", "STATUS", "CREATED"]
    assert tenant["tenant_id"] in table.out

    suspended = raas("tenants", "suspend", tenant["tenant_id"], env=base_env)
    assert (suspended.code, suspended.out.strip()) == (0, f"{tenant['tenant_id']} is suspended (operator)")
    refused = raas("usage", env=tenant_env, process=True)
    assert refused.code == 1
    assert refused.err.startswith("tenant_suspended: ")
    assert raas("tenants", "resume", tenant["tenant_id"], env=base_env).out.strip() == f"{tenant['tenant_id']} is active"
    # a tenant key on an operator command: the API's refusal, as `code: message`
    wrong = raas("tenants", "list", "--api-key", tenant_env["RAAS_API_KEY"], env=base_env)
    assert wrong.code == 1
    assert wrong.err.split(":")[0] in {"insufficient_role", "forbidden"}


def test_keys_config_and_usage(tenant_env: dict[str, str], tmp_path: Path) -> None:
    created = raas("keys", "create", "ci", "--role", "reader", env=tenant_env)
    assert created.code == 0, created.err
    reader_key = created.out.strip()
    key_id = next(k["key_id"] for k in json.loads(raas("keys", "list", "--json", env=tenant_env).out) if k["name"] == "ci")
    assert raas("keys", "list", env=tenant_env).out.count("\n") == 3  # header, the admin key, ci
    assert raas("keys", "revoke", key_id, env=tenant_env).code == 0
    revoked = raas("usage", "--api-key", reader_key, env=tenant_env)  # the flag overrides RAAS_API_KEY
    assert revoked.code == 1
    assert revoked.err.startswith("unauthorized: ")

    before = tmp_path / "before.json"
    before.write_text(raas("config", "get", "--json", env=tenant_env).out)
    changed = raas("config", "set", "temperature=0.2", "chunking.size=300", 'branding.primary_color="#112233"', env=tenant_env)
    assert (changed.code, changed.out.strip()) == (0, "version 1: set branding.primary_color, chunking.size, temperature")
    current = json.loads(raas("config", "get", "--json", env=tenant_env).out)
    assert (current["config"]["temperature"], current["config"]["chunking"]["size"], current["config"]["chunking"]["overlap"]) == (
        0.2,
        300,
        30,
    )
    diff = raas("config", "diff", str(before), "current", env=tenant_env)
    assert diff.code == 0, diff.err
    assert '-  "temperature": 0.7,' in diff.out.splitlines()
    assert '+  "temperature": 0.2,' in diff.out.splitlines()
    assert diff.out.startswith(f"--- {before}\n+++ version 1 (current)\n")
    conflict = raas("config", "set", "top_k=3", "--if-match", "0", env=tenant_env)
    assert conflict.code == 1
    assert conflict.err.startswith("version_conflict: ")
    versions = raas("config", "versions", env=tenant_env)
    assert versions.out.splitlines()[1].split()[0] == "1"
    assert raas("config", "rollback", "0", env=tenant_env).out.strip() == "version 2: restored version 0"
    between = raas("config", "diff", "1", "2", env=tenant_env)  # two past versions, read whole from the server
    assert between.code == 0, between.err
    assert between.out.startswith("--- version 1\n+++ version 2 (current)\n")
    assert '-  "temperature": 0.2,' in between.out.splitlines()
    assert '+  "temperature": 0.7,' in between.out.splitlines()

    assert raas("config", "set", "temperature", env=tenant_env, process=True).code == 2  # not KEY=VALUE
    unknown = raas("config", "set", "temprature=1", env=tenant_env)
    assert unknown.code == 2
    assert "temprature" in unknown.err
    out_of_bounds = raas("config", "set", "temperature=5", env=tenant_env)
    assert out_of_bounds.code == 1
    assert out_of_bounds.err.startswith("validation_error: ")

    usage = raas("usage", env=tenant_env)
    assert usage.code == 0
    assert usage.out.splitlines()[0].split()[0] == "period"
    bad_period = raas("usage", "--period", "2026-13", env=tenant_env)
    assert bad_period.code == 1
    assert bad_period.err.startswith("validation_error: ")
    assert "period" in bad_period.err  # the details name the field


def test_docs_upload_takes_files_folders_and_globs_then_ask_streams(tenant_env: dict[str, str], tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "policies").mkdir(parents=True)
    (corpus / "policies" / "refunds.md").write_text("# Refund policy\n\nCustomers may request a refund within 30 days of purchase.\n")
    (corpus / "shipping.txt").write_text("We ship worldwide within five business days.\n")
    (corpus / ".draft.txt").write_text("a hidden draft is not uploaded\n")
    (tmp_path / "faq-1.md").write_text("# FAQ\n\nSupport answers within one business day.\n")
    (tmp_path / "faq-2.md").write_text("# FAQ 2\n\nExpress shipping takes two days.\n")

    missing = raas("docs", "upload", str(tmp_path / "nope.md"), env=tenant_env)
    assert missing.code == 2
    assert "no such file" in missing.err

    uploaded = raas(
        "docs", "upload", str(corpus), str(tmp_path / "faq-*.md"), "--metadata", '{"source": "cli"}', env=tenant_env, process=True
    )
    assert uploaded.code == 0, uploaded.err
    assert uploaded.out == "4 of 4 uploaded (4 indexed); 0 failed\n"
    # no terminal: one progress line per finished file on stderr, instead of a bar
    progress = uploaded.err.splitlines()
    assert sorted(line.split()[:2] for line in progress) == [[f"[{n}/4]", "indexed"] for n in range(1, 5)]
    assert sorted(line.split()[2] for line in progress) == sorted(
        str(p) for p in (corpus / "policies" / "refunds.md", corpus / "shipping.txt", tmp_path / "faq-1.md", tmp_path / "faq-2.md")
    )  # the hidden draft is not among them
    documents = json.loads(raas("docs", "list", "--json", env=tenant_env).out)
    assert {d["metadata"]["source"] for d in documents} == {"cli"}

    asked = raas("ask", "When can customers request a refund?", env=tenant_env, process=True)
    assert asked.code == 0, asked.err
    answer, sources = asked.out.split("\nSources:\n")
    assert "within 30 days" in answer
    assert "refunds.md" in sources.splitlines()[0]
    assert "offline-extractive (offline)" in asked.err
    as_json = json.loads(raas("ask", "How fast is express shipping?", "--json", "--top-k", "2", env=tenant_env).out)
    assert as_json["retrieval"]["top_k"] == 2
    filtered = raas("ask", "refund?", "--filter", 'source="elsewhere"', env=tenant_env)
    assert "Sources:" not in filtered.out


def test_settings_and_usage_errors(base_env: dict[str, str]) -> None:
    env = {k: v for k, v in base_env.items() if k != "RAAS_URL"}
    no_url = raas("usage", env=env)
    assert no_url.code == 2
    assert "RAAS_URL" in no_url.err
    no_key = raas("usage", env=base_env)
    assert no_key.code == 2
    assert "RAAS_API_KEY" in no_key.err
    assert raas("docs", "frobnicate", env=base_env).code == 2
    help_text = raas("--help", env=base_env).out
    assert all(command in help_text for command in ("tenants", "keys", "docs", "ask", "usage", "config", "local", "price"))
