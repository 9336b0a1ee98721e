"""The `raas` command line."""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raas", description="raas: multi-tenant RAG-as-a-Service")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the whole platform on this machine (AWS emulated by moto)")
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    local.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    local.add_argument("--state-dir", type=Path, default=None, help="keep data here between restarts")

    price = commands.add_parser("price", help="price a month of usage on a tier (the same calculator as POST /v1/pricing/estimate)")
    price.add_argument("--tier", required=True, choices=["free", "smb", "midmarket", "enterprise"])
    price.add_argument("--queries", type=int, default=0)
    price.add_argument("--storage-gb", type=Decimal, default=Decimal(0))
    price.add_argument("--api-calls", type=int, default=0)
    price.add_argument("--annual", action="store_true", help="billed annually (discounted base fee)")
    price.add_argument("--json", action="store_true", help="print the quote as JSON")

    args = parser.parse_args(argv)
    if args.command == "local":
        from raas.local.server import run

        run(args.host, args.port, args.state_dir)
    elif args.command == "price":
        print(_price(args))
    return 0


def _price(args: argparse.Namespace) -> str:
    from raas.domain.catalog import Tier
    from raas.domain.pricing import BillableUsage, quote

    try:
        usage = BillableUsage(queries=args.queries, storage_gb=args.storage_gb, api_calls=args.api_calls)
    except ValueError as exc:
        raise SystemExit(f"raas price: {exc}") from None
    result = quote(Tier(args.tier), usage, args.annual)
    if args.json:
        return result.model_dump_json(indent=2)
    rows = [f"{line.description:<52} {line.quantity:>12} {line.amount_cents / 100:>12,.2f}" for line in result.lines]
    total = f"{'total per month (' + result.currency.upper() + ')':<52} {'':>12} {result.total_cents / 100:>12,.2f}"
    note = ["(enterprise is sold on custom terms; this is the list price)"] if result.custom_contract else []
    return "\n".join([*rows, "-" * 78, total, *note])


if __name__ == "__main__":
    raise SystemExit(main())
