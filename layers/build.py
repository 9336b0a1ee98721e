"""Builds the Lambda dependency layer with pip — no Docker — from exactly the versions the tests ran with.

    .venv/bin/python layers/build.py [--arch arm64|x86_64] [--report]   build (or reuse) the layer, check it, print sizes
    .venv/bin/python layers/build.py --lock                              rewrite layers/requirements.lock from this venv

The runtime dependencies listed in pyproject.toml are installed, pinned by layers/requirements.lock,
as binary wheels for the Lambda runtime's platform into layers/build/<arch>/python. The same lock
constrains the dev install (scripts/dev.sh), so the layer and the test venv hold the same versions;
after every build the layer's dist-info folders are compared with the venv's distributions and any
difference fails the build. A stamp (requirements, lock, target) makes a rebuild a no-op when nothing
changed. Needs the package index once; `cdk synth` afterwards works offline.

To move the pins: `scripts/dev.sh lock` (upgrades the venv, then runs `--lock`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a bare system python: the layer must be checked against the venv the tests use anyway
    raise SystemExit("Run layers/build.py with the project's venv: .venv/bin/python layers/build.py (scripts/dev.sh creates it)") from None

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "layers" / "build"
LOCK = ROOT / "layers" / "requirements.lock"

# The functions run on the python3.12 runtime, whose operating system is Amazon Linux 2023
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html); AL2023 ships glibc 2.34
# (https://docs.aws.amazon.com/linux/al2023/ug/core-glibc.html). A wheel runs there when its
# manylinux_2_N tag has N <= 34, so every level from 2_34 down to manylinux2014 (= 2_17) is acceptable.
# Lambda's guide builds packages with native code from such wheels with pip's --platform and
# --only-binary=:all: (https://docs.aws.amazon.com/lambda/latest/dg/python-package.html).
LAMBDA_PYTHON = "3.12"
LAMBDA_GLIBC_MINOR = 34
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}


def platform_tags(arch: str, glibc_minor: int = LAMBDA_GLIBC_MINOR) -> list[str]:
    """Every manylinux tag the runtime can load, newest first. pip matches `manylinux_2_N` tags
    exactly (it expands only the legacy manylinux2014/2010 aliases), and `--platform` may be given
    once per tag (https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-platform), so each
    level is listed; with manylinux2014 alone pip picks older releases (numpy 2.2 instead of 2.4)."""
    machine = MACHINES[arch]
    return [*(f"manylinux_2_{minor}_{machine}" for minor in range(glibc_minor, 16, -1)), f"manylinux2014_{machine}"]


def host_environment() -> dict[str, str]:
    """PEP 508 marker values of the interpreter running this script (the test venv's)."""
    return {key: str(value) for key, value in default_environment().items()}


def target_environment(arch: str, python: str = LAMBDA_PYTHON) -> dict[str, str]:
    """PEP 508 marker values of the Lambda runtime, to follow the dependencies it will install."""
    return {
        **host_environment(),
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": MACHINES[arch],
    }


def runtime_requirements() -> list[str]:
    """pyproject's runtime dependencies, boto3 included: the runtime's own copy is older than the
    one we test with, and mixing it with our layer's transitive pins (python-dateutil) breaks it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"])


def runtime_closure(requirements: Iterable[str], environments: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """name -> installed version for every distribution the requirements pull in, in any of the
    environments (the Lambda targets and this interpreter), read from the venv the tests run in."""
    versions: dict[str, str] = {}
    missing: set[str] = set()
    seen: set[tuple[str, frozenset[str], int]] = set()
    pending = [(Requirement(text), index, dict(env)) for text in requirements for index, env in enumerate(environments)]
    while pending:
        requirement, index, env = pending.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras), index)
        if key in seen:
            continue
        seen.add(key)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.add(name)
            continue
        versions[name] = distribution.version
        extras = {"", *requirement.extras}
        for text in distribution.requires or []:
            dependency = Requirement(text)
            if dependency.marker is None or any(dependency.marker.evaluate({**env, "extra": extra}) for extra in extras):
                pending.append((dependency, index, env))
    if missing:
        raise SystemExit(f"not installed in this venv, so it cannot be pinned from it: {', '.join(sorted(missing))}")
    return dict(sorted(versions.items()))


def write_lock(path: Path = LOCK) -> dict[str, str]:
    environments = [*(target_environment(arch) for arch in MACHINES), host_environment()]
    versions = runtime_closure(runtime_requirements(), environments)
    header = (
        "# The runtime dependency closure, pinned to the versions the tests ran with. Generated by\n"
        "# `python layers/build.py --lock` (or `scripts/dev.sh lock`); do not edit by hand. Used as pip\n"
        "# constraints by both the dev install (scripts/dev.sh) and the Lambda layer (layers/build.py).\n"
    )
    path.write_text(header + "".join(f"{name}=={version}\n" for name, version in versions.items()), encoding="utf-8")
    return versions


def read_lock(path: Path = LOCK) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def layer_dir(arch: str) -> Path:
    return BUILD / arch


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def installed_distributions(site_packages: Path) -> dict[str, str]:
    """name -> version of every `<name>-<version>.dist-info` folder (wheel spec: the name is escaped
    with `_`, the version holds no `-`) in an installed tree such as the layer's python/."""
    found: dict[str, str] = {}
    for folder in site_packages.glob("*.dist-info"):
        name, _, version = folder.name.removesuffix(".dist-info").rpartition("-")
        found[canonicalize_name(name)] = version
    return found


def tested_distributions() -> dict[str, str]:
    """name -> version of every distribution in the interpreter running this script (the test venv)."""
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def version_mismatches(layer: Mapping[str, str], tested: Mapping[str, str]) -> list[str]:
    """What the layer ships that the tests did not run: other versions, or distributions absent from the venv."""
    problems = []
    for name, version in sorted(layer.items()):
        if name not in tested:
            problems.append(f"{name}=={version} is in the layer but not in the test venv")
        elif tested[name] != version:
            problems.append(f"{name}: layer {version}, tests ran with {tested[name]}")
    return problems


class LayerMismatchError(SystemExit):
    pass


def check_layer(site_packages: Path, tested: Mapping[str, str] | None = None) -> dict[str, str]:
    layer = installed_distributions(site_packages)
    if not layer:
        raise LayerMismatchError(f"no distributions in {site_packages}")
    problems = version_mismatches(layer, tested_distributions() if tested is None else tested)
    if problems:
        raise LayerMismatchError(
            "The layer differs from the venv the tests ran with:\n  "
            + "\n  ".join(problems)
            + "\nRe-run scripts/dev.sh test (it installs the venv with layers/requirements.lock),"
            + " or move the pins with scripts/dev.sh lock."
        )
    return layer


def pip_install_command(arch: str, python: str, target: Path, requirements: list[str]) -> list[str]:
    """Binary wheels only (nothing compiled for the wrong platform), for every tag the runtime loads,
    each version held to the lock."""
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        *(option for tag in platform_tags(arch) for option in ("--platform", tag)),
        "--implementation", "cp", "--python-version", python,
        "--only-binary=:all:", "--constraint", str(LOCK), "--target", str(target), *requirements,
    ]  # fmt: skip


def build(arch: str = "arm64", python: str = LAMBDA_PYTHON, force: bool = False) -> Path:
    requirements = runtime_requirements()
    platforms = platform_tags(arch)
    target = layer_dir(arch)
    stamp = target / ".stamp"
    wanted = hashlib.sha256(json.dumps([requirements, LOCK.read_text(encoding="utf-8"), platforms, python]).encode()).hexdigest()
    if force or not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(target, ignore_errors=True)
        (target / "python").mkdir(parents=True)
        command = pip_install_command(arch, python, target / "python", requirements)
        subprocess.run(command, check=True)  # noqa: S603 - our own fixed argument list
        for cache in (target / "python").rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        stamp.write_text(wanted)
    check_layer(target / "python")  # every time: the venv may have moved since the layer was built
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
    layer = directory_size(layer_dir(arch) / "python")
    return [(name, code, layer) for name in [*API_HANDLERS, *EVENT_HANDLERS, "authorizer"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(MACHINES), default="arm64")
    parser.add_argument("--python", default=LAMBDA_PYTHON)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--lock", action="store_true", help="rewrite layers/requirements.lock from this venv and exit")
    parser.add_argument("--report", action="store_true", help="print each function's unzipped size (code + layer) against the limit")
    args = parser.parse_args()
    if args.lock:
        pins = write_lock()
        print(f"{LOCK.relative_to(ROOT)}: {len(pins)} pins")
        return
    target = build(args.arch, args.python, args.force)
    layer = installed_distributions(target / "python")
    size = directory_size(target / "python")
    print(f"layer: {target} ({size / 1e6:.1f} MB unzipped, {len(layer)} distributions, the same versions as the test venv)")
    if args.report:
        limit = f"Lambda's 250 MB (MiB) unzipped = {LAMBDA_UNZIPPED_LIMIT / 1e6:.1f} MB"
        print(f"{'function':<12} {'code MB':>8} {'layer MB':>9} {'total MB':>9}  (limit: {limit})")
        for name, code, layer_bytes in size_report(args.arch):
            flag = "" if code + layer_bytes < LAMBDA_UNZIPPED_LIMIT else "  OVER THE LIMIT"
            print(f"{name:<12} {code / 1e6:>8.2f} {layer_bytes / 1e6:>9.1f} {(code + layer_bytes) / 1e6:>9.1f}{flag}")


if __name__ == "__main__":
    main()
