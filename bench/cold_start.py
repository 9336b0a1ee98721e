"""Import time of each Lambda handler module in fresh processes, beside the bare baseline.

    python bench/cold_start.py [--runs 5]

The baseline is what any Powertools API function pays before its own code: boto3, pydantic and
Powertools' Logger, Metrics, Tracer and APIGatewayRestResolver, measured in the same run.
The target is each function at most 1.3x the baseline. Each handler row also lists which heavy SDKs its import pulled in (it should be none:
openai, anthropic, opensearch-py and sentence-transformers load lazily, where used).

Then the first request's AWS clients: building the clients a document upload needs (DynamoDB, S3, KMS, SQS,
EventBridge, STS), each in a session of its own as boto3 recommends, first each session with its own loader
(boto3's default, and raas before the shared loader) and then through `raas.adapters.aws.new_client` (one loader a
process), paired in fresh processes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lambdas"))

from raas.handlers.registry import API_HANDLERS, AUTHORIZER, EVENT_HANDLERS  # noqa: E402

BASELINE = (
    "import boto3, pydantic; from aws_lambda_powertools import Logger, Metrics, Tracer; "
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver"
)
HEAVY = ("openai", "anthropic", "opensearchpy", "sentence_transformers", "torch", "stripe", "pypdf", "docx", "bs4")
PROBE = """
import json, sys, time
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def _sample(statement: str) -> tuple[float, list[str]]:
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PROBE.format(statement=statement, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "lambdas"), "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), list(result["heavy"])


def measure(statement: str, runs: int) -> tuple[float, float, list[str]]:
    """Median seconds of `statement` and median ratio to the baseline. Each sample is paired with a baseline
    sample taken right before it, so a busy or quiet spell of the machine moves both sides of each ratio
    alike (measured apart, the baseline alone drifted between 0.15 and 0.21 s from one run to the next)."""
    samples: list[float] = []
    ratios: list[float] = []
    heavy: list[str] = []
    for _ in range(runs):
        base, _ = _sample(BASELINE)
        seconds, heavy = _sample(statement)
        samples.append(seconds)
        ratios.append(seconds / base)
    return statistics.median(samples), statistics.median(ratios), heavy


FIRST_CLIENTS = ("dynamodb", "s3", "kms", "sqs", "events", "sts")
CLIENTS_ALONE = f"import boto3\nfor service in {FIRST_CLIENTS!r}:\n    boto3.session.Session().client(service)"
CLIENTS_SHARED = f"from raas.adapters.aws import new_client\nfor service in {FIRST_CLIENTS!r}:\n    new_client(service)"


def _clients(statement: str) -> str:
    """`statement` timed after boto3 is imported, so that only building the clients is measured."""
    return f"import boto3, botocore.session\nstart = time.perf_counter()\n{statement}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="measure only the modules whose name contains this")
    args = parser.parse_args()
    baseline, _, _ = measure(BASELINE, args.runs)
    print(f"{'module':<32}{'import s (median)':>18}{'x baseline':>12}  heavy SDKs loaded")
    print(f"{'baseline (see above)':<32}{baseline:>18.3f}{1:>12.2f}")
    modules = {**API_HANDLERS, **EVENT_HANDLERS, "authorizer": AUTHORIZER}
    worst = 0.0
    for module in modules.values():
        if args.only not in module:
            continue
        seconds, ratio, heavy = measure(f"import {module}", args.runs)
        worst = max(worst, ratio)
        print(f"{module:<32}{seconds:>18.3f}{ratio:>12.2f}  {', '.join(heavy) or 'none'}")
    print(f"worst function: {worst:.2f}x the baseline (target: at most 1.3x; each ratio the median of paired samples)")
    alone, shared = [], []
    for _ in range(args.runs):
        alone.append(_sample(_clients(CLIENTS_ALONE))[0])
        shared.append(_sample(_clients(CLIENTS_SHARED))[0])
    print(f"building {len(FIRST_CLIENTS)} clients ({', '.join(FIRST_CLIENTS)}), median of {args.runs} fresh processes:")
    print(f"  a loader a session (baseline): {statistics.median(alone):.3f} s; one loader a process: {statistics.median(shared):.3f} s")
    for sdk in ("openai", "anthropic"):
        seconds, ratio, _ = measure(f"import {sdk}", args.runs)
        print(f"{'(for scale) import ' + sdk:<32}{seconds:>18.3f}{ratio:>12.2f}")


if __name__ == "__main__":
    main()
