"""No handler pays at cold start for an SDK it does not use: heavy SDKs load where used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raas.handlers.registry import API_HANDLERS, AUTHORIZER, EVENT_HANDLERS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("openai", "anthropic", "opensearchpy", "sentence_transformers", "torch", "stripe", "moto", "jwt", "cryptography")


@pytest.mark.parametrize("module", sorted({*API_HANDLERS.values(), *EVENT_HANDLERS.values(), AUTHORIZER}))
def test_handler_import_loads_no_heavy_sdk(module: str) -> None:
    probe = f"import json, sys; import {module}; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
