"""The `raas` command line."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raas", description="raas: multi-tenant RAG-as-a-Service")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the whole platform on this machine (AWS emulated by moto)")
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    local.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    local.add_argument("--state-dir", type=Path, default=None, help="keep data here between restarts")

    args = parser.parse_args(argv)
    if args.command == "local":
        from raas.local.server import run

        run(args.host, args.port, args.state_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
