"""Builds the Lambda dependency layer with pip — no Docker.

    python layers/build.py [--arch arm64|x86_64] [--python 3.12]

Installs the runtime dependencies listed in pyproject.toml as manylinux wheels for the Lambda
platform into layers/build/<arch>/python, then prints the unzipped size. Only binary wheels
are accepted (`--only-binary=:all:`), so nothing is compiled for the wrong platform. A stamp
(the dependency list and target) makes a rebuild a no-op when nothing changed. Needs the
package index once; `cdk synth` afterwards works offline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "layers" / "build"
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}


def runtime_requirements() -> list[str]:
    """pyproject's runtime dependencies, boto3 included: the runtime's own copy is older than the
    one we test with, and mixing it with our layer's transitive pins (python-dateutil) breaks it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"])


def layer_dir(arch: str) -> Path:
    return BUILD / arch


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(arch: str = "arm64", python: str = "3.12", force: bool = False) -> Path:
    requirements = runtime_requirements()
    target = layer_dir(arch)
    stamp = target / ".stamp"
    wanted = hashlib.sha256(json.dumps([requirements, arch, python]).encode()).hexdigest()
    if not force and stamp.exists() and stamp.read_text() == wanted:
        return target
    shutil.rmtree(target, ignore_errors=True)
    (target / "python").mkdir(parents=True)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--platform", PLATFORMS[arch], "--implementation", "cp", "--python-version", python,
        "--only-binary=:all:", "--target", str(target / "python"), *requirements,
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603 - our own fixed argument list
    for cache in (target / "python").rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    stamp.write_text(wanted)
    return target


LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def size_report(arch: str) -> list[tuple[str, int, int]]:
    """(function, code bytes, layer bytes) for every function the CDK app deploys. Every function
    ships the same code asset (lambdas/, without caches) and the one dependency layer."""
    sys.path.insert(0, str(ROOT / "lambdas"))
    from raas.handlers.registry import API_HANDLERS, EVENT_HANDLERS

    code = sum(
        f.stat().st_size
        for f in (ROOT / "lambdas").rglob("*")
        if f.is_file() and "__pycache__" not in f.parts and ".egg-info" not in str(f)
    )
    layer = directory_size(layer_dir(arch))
    return [(name, code, layer) for name in [*API_HANDLERS, *EVENT_HANDLERS, "authorizer"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--python", default="3.12")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--report", action="store_true", help="print each function's unzipped size (code + layer) against the limit")
    args = parser.parse_args()
    target = build(args.arch, args.python, args.force)
    print(f"layer: {target} ({directory_size(target) / 1e6:.1f} MB unzipped)")
    if args.report:
        print(f"{'function':<12} {'code MB':>8} {'layer MB':>9} {'total MB':>9}  (limit {LAMBDA_UNZIPPED_LIMIT / 1e6:.0f} MB)")
        for name, code, layer in size_report(args.arch):
            flag = "" if code + layer < LAMBDA_UNZIPPED_LIMIT else "  OVER THE LIMIT"
            print(f"{name:<12} {code / 1e6:>8.2f} {layer / 1e6:>9.1f} {(code + layer) / 1e6:>9.1f}{flag}")


if __name__ == "__main__":
    main()
