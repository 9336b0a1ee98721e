"""`raas local`, plus invocations of the platform's event functions on demand, for the console's tests.

In AWS an operator can run a scheduled function now, with an explicit event:
`aws lambda invoke --function-name <the metering function> --payload '{"action": "invoice", "period": "2026-12"}'`
(the metering handler takes `period` for exactly this; its schedule leaves it out and closes the month just
ended). `raas local` runs its schedules on a timer only, and the monthly one invoices the month just closed, in
which a tenant created by a test does not exist yet. So the test that opens an invoice starts the platform
through this module: each JSON line `{"function": "metering", "event": {...}}` on standard input invokes that
function's handler in the platform's own process, the way raas.local.schedules does, and its result comes back
on standard output as `invoked: {"result": ...}` (or `{"error": "..."}`).

Nothing here reaches into the platform's storage: the invoice is issued by the platform's own code."""

from __future__ import annotations

import json
import sys
import threading

from raas.cli import main as raas_main


def _serve_invocations() -> None:
    from raas.handlers.registry import load_event_handler
    from raas.local.invocation import lambda_context

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        function = str(request["function"])
        try:
            result = load_event_handler(function)(dict(request["event"]), lambda_context(f"raas-{function}"))
            reply = {"result": result}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print("invoked: " + json.dumps(reply, default=str), flush=True)


if __name__ == "__main__":
    # Lines arrive only after the test has read "listening on", when the platform's services are installed.
    threading.Thread(target=_serve_invocations, name="raas-invoke", daemon=True).start()
    sys.exit(raas_main(["local", *sys.argv[1:]]))
