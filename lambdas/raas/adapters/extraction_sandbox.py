"""Extraction of binary formats in a child process with a hard memory limit and a wall-clock timeout.

`raas.domain.extraction` bounds what a document may expand to and checks a deadline between
steps, but one parser call (bs4 on a large HTML page, pypdf on one page, lxml on one huge
paragraph) can still take far more memory than the text it yields, and in a process that
serves everyone (`raas local`) or holds other work (a Lambda batch) that is everyone's problem.
So PDF, DOCX and HTML are extracted in a child process whose address space is capped with
`setrlimit(RLIMIT_AS)`: past it, allocation fails inside the child only (MemoryError, or the
child dies), and the document fails with that reason. The child sets the limit itself, first
thing, so no code runs between fork and exec (preexec_fn is unsafe in a threaded parent).

A child costs a Python start (about 0.2 s), which is why plain text, Markdown, CSV and JSON,
whose parsers see at most the budget in bytes, stay in process. Lambda runs subprocesses
(multiprocessing's pools do not work there: no /dev/shm), and the child inherits the function's
environment and code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from raas.domain.documents import SUPPORTED_TYPES
from raas.domain.extraction import ExtractionBudget, ExtractionError, extract_text

SANDBOXED_KINDS = frozenset({"pdf", "docx", "html"})
# What the child may map beyond its budget: the interpreter, lxml, pypdf and bs4 themselves.
BASE_ADDRESS_SPACE = 384 * 1024 * 1024
# How much memory a parser may use per byte of text it is allowed to produce.
ADDRESS_SPACE_PER_BUDGET_BYTE = 4
# The child's own deadline is the budget's; this is the margin for its start and exit.
START_SECONDS = 15.0

_EXTRACTION_FAILED = 3
_OUT_OF_MEMORY = 4


@dataclass(frozen=True)
class SandboxedExtractor:
    """Extracts text like `extract_text`, in a child process for the formats that can blow up."""

    base_address_space: int = BASE_ADDRESS_SPACE
    per_budget_byte: int = ADDRESS_SPACE_PER_BUDGET_BYTE

    def memory_limit(self, budget: ExtractionBudget) -> int:
        return self.base_address_space + self.per_budget_byte * budget.max_expanded_bytes

    def __call__(self, data: bytes, content_type: str, budget: ExtractionBudget) -> str:
        if SUPPORTED_TYPES.get(content_type) not in SANDBOXED_KINDS:
            return extract_text(data, content_type, budget)
        limit = self.memory_limit(budget)
        header = json.dumps({"content_type": content_type, "max_expanded_bytes": budget.max_expanded_bytes, "seconds": budget.seconds})
        try:
            child = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
                [sys.executable, "-m", __name__, str(limit)],
                input=header.encode() + b"\n" + data,
                capture_output=True,
                timeout=budget.seconds + START_SECONDS,
                check=False,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            )
        except subprocess.TimeoutExpired:
            raise ExtractionError(f"extracting the text took longer than {budget.seconds:g} s") from None
        if child.returncode == 0:
            return child.stdout.decode("utf-8")
        reason = child.stderr.decode("utf-8", "replace").strip().splitlines()
        # Out of memory shows in more than one way: our own exit code, a signal, or (when even the
        # way out needed memory) an interpreter exit with MemoryError in its traceback.
        if child.returncode == _OUT_OF_MEMORY or child.returncode < 0 or "MemoryError" in (reason[-1] if reason else ""):
            raise ExtractionError(f"extracting the text needs more than {limit // (1024 * 1024)} MiB of memory")
        if child.returncode == _EXTRACTION_FAILED and reason:
            raise ExtractionError(reason[-1])
        raise ExtractionError(f"the extractor failed (exit {child.returncode})")


def _child(limit: int) -> int:
    import resource

    # First: the cap holds for every byte the parsers allocate (man 2 setrlimit, RLIMIT_AS).
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    raw = sys.stdin.buffer.read()
    header, _, data = raw.partition(b"\n")
    request = json.loads(header)
    budget = ExtractionBudget(max_expanded_bytes=int(request["max_expanded_bytes"]), seconds=float(request["seconds"]))
    try:
        text = extract_text(data, str(request["content_type"]), budget)
    except MemoryError:
        return _OUT_OF_MEMORY
    except ExtractionError as exc:
        reason = str(exc.args[0] if exc.args else exc)
        exc.__cause__ = exc.__context__ = None  # let the parser's tree go before writing anything
        del exc
        sys.stderr.write(f"{reason}\n")
        return _EXTRACTION_FAILED
    sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    try:
        code = _child(int(sys.argv[1]))
    except MemoryError:
        os._exit(_OUT_OF_MEMORY)  # no cleanup: it would need memory too
    sys.exit(code)
