"""No handler pays at cold start for an SDK it does not use: heavy SDKs load where used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raas.handlers.registry import API_HANDLERS, AUTHORIZER, EVENT_HANDLERS

ROOT = Path(__file__).resolve().parents[2]
# boto3 too: every function needs it, and loads it with its first client (about 0.1 s), not at import.
HEAVY = ("openai", "anthropic", "opensearchpy", "sentence_transformers", "torch", "stripe", "moto", "jwt", "cryptography", "boto3")


@pytest.mark.parametrize("module", sorted({*API_HANDLERS.values(), *EVENT_HANDLERS.values(), AUTHORIZER}))
def test_handler_import_loads_no_heavy_sdk(module: str) -> None:
    probe = f"import json, sys; import {module}; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("group", ["documents", "query", "account", "conversations", "tenants"])
def test_idempotency_machinery_loads_on_the_first_request_that_asks_for_it(group: str) -> None:
    """Powertools' idempotency utility (a dozen modules) and the streaming module cost ~15 ms of every cold
    start of these functions; most of their requests carry no Idempotency-Key."""
    lazy = ("aws_lambda_powertools.utilities.idempotency",) + (() if group in ("query", "conversations") else ("raas.handlers.streaming",))
    probe = f"import json, sys; import {API_HANDLERS[group]}; print(json.dumps(sorted(m for m in {lazy!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
