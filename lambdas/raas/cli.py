"""The `raas` command line."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

# The API commands live in the client package (clients/python, `raas_client.cli`), imported only when
# one of them runs, so `raas local` and the other commands start as fast as before.
API_COMMANDS = {
    "tenants": "create, list, suspend and resume tenants (operator key)",
    "keys": "create, list and revoke API keys",
    "docs": "upload (files, folders, globs; progress bar) and list documents",
    "ask": "ask a question; the answer streams to the terminal",
    "usage": "the tenant's usage for a month",
    "config": "get, set, diff, list versions and roll back the tenant's configuration",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in API_COMMANDS:
        return _api_command(argv)
    parser = argparse.ArgumentParser(
        prog="raas",
        description="raas: multi-tenant RAG-as-a-Service",
        epilog="API commands read RAAS_URL and RAAS_API_KEY (--url, --api-key override); `raas COMMAND --help` for each.",
    )
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

    deployment = argparse.ArgumentParser(add_help=False)
    deployment.add_argument("--stage", required=True, help="the raas:stage you deployed (tables are raas-<stage>-*)")
    deployment.add_argument("--region", default=None, help="the region you deployed to (default: AWS_REGION / your AWS config)")
    operator = commands.add_parser(
        "operator-key",
        help="operator keys of a deployed raas, with your deploy credentials (the first key cannot come from the API)",
    )
    operator_commands = operator.add_subparsers(dest="operator_command", required=True)
    create = operator_commands.add_parser("create", parents=[deployment], help="create an operator key; prints it once")
    create.add_argument("--name", default="operator", help="a label to recognise the key by (default: operator)")
    operator_commands.add_parser("list", parents=[deployment], help="list operator keys (never their secrets)")
    revoke = operator_commands.add_parser("revoke", parents=[deployment], help="revoke an operator key at once")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id, as `list` shows it (k...)")

    verify = commands.add_parser("webhook-verify", help="check a webhook's Raas-Signature against its raw body (read from stdin)")
    verify.add_argument("--secret", required=True, help="the endpoint's signing secret (whsec_...)")
    verify.add_argument("--signature", required=True, help="the Raas-Signature header value")
    verify.add_argument("--tolerance", type=int, default=300, help="seconds a timestamp may be off (default 300)")

    for name, text in API_COMMANDS.items():
        commands.add_parser(name, help=text, add_help=False)  # listed in --help; parsed by raas_client.cli

    args = parser.parse_args(argv)
    if args.command == "webhook-verify":
        from raas.domain.webhooks import SignatureError, verify_signature

        try:
            stamp = verify_signature(sys.stdin.buffer.read(), args.signature, args.secret, tolerance_seconds=args.tolerance)
        except SignatureError as exc:
            raise SystemExit(f"raas webhook-verify: {exc}") from None
        print(f"valid (signed at {stamp})")
        return 0
    if args.command == "local":
        from raas.local.server import run

        run(args.host, args.port, args.state_dir)
    elif args.command == "price":
        print(_price(args))
    elif args.command == "operator-key":
        _operator_key(args)
    return 0


def _api_command(argv: list[str]) -> int:
    try:
        from raas_client.cli import main as api_main
    except ImportError:
        raise SystemExit(f"raas {argv[0]}: the client package is not installed: pip install -e clients/python") from None
    return api_main(argv, prog="raas")


def _operator_key(args: argparse.Namespace) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from raas.operator_keys import OperatorKeyError, connect

    try:
        keys = connect(args.stage, args.region)
        if args.operator_command == "create":
            key, secret = keys.create(args.name)
            print(secret)  # alone on stdout, so `KEY=$(raas operator-key create ...)` works
            print(
                f"Created operator key {key.key_id} ({key.name!r}) in {keys.table} ({keys.region}).\n"
                "WARNING: the key above is shown this once and cannot be recovered (only its hash is stored). "
                "Keep it in a password manager now; if it is lost, create another and revoke this one.",
                file=sys.stderr,
            )
        elif args.operator_command == "list":
            print(f"{'KEY_ID':<18} {'NAME':<24} {'PREFIX':<16} {'CREATED':<26} {'LAST USED':<26} REVOKED")
            for key in keys.all_keys():
                last_used = key.last_used_at.isoformat() if key.last_used_at else "-"
                revoked_at = key.revoked_at.isoformat() if key.revoked_at else "-"
                print(
                    f"{key.key_id:<18} {key.name[:24]:<24} {key.prefix:<16} {key.created_at.isoformat():<26} {last_used:<26} {revoked_at}"
                )
        elif args.operator_command == "revoke":
            revoked = keys.revoke(args.key_id)
            print(f"Revoked operator key {revoked.key_id} ({revoked.name!r}); it is refused from now on.")
            if not any(k.active for k in keys.all_keys()):
                print("No active operator key is left: create one with `raas operator-key create`.", file=sys.stderr)
    except OperatorKeyError as exc:
        raise SystemExit(f"raas operator-key: {exc}") from None
    except (ClientError, BotoCoreError) as exc:
        raise SystemExit(f"raas operator-key: AWS refused or failed the request: {exc}") from None


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
