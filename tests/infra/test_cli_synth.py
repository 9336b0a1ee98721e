"""The deploy guide's own commands: the real CDK CLI runs cdk.json exactly as shipped, from a plain shell.

`npx aws-cdk@2 synth|deploy` reads ./cdk.json, whose "app" tells it how to run the app
(https://docs.aws.amazon.com/cdk/v2/guide/projects.html), and starts that command in the caller's own
environment from the current directory (the CLI's README, "Configuration": ./cdk.json). A developer who
ran `scripts/dev.sh test` has no venv activated there, so the app must find the project's interpreter
itself. scripts/dev.sh installs the pinned CLI into .cdk-cli/ so this test never resolves npm at run time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK_CLI = ROOT / ".cdk-cli" / "node_modules" / ".bin" / "cdk"
STACKS = ("RaasProdData", "RaasProdSearch", "RaasProdApi", "RaasProdObservability")
CLOSED_LOOPBACK_PORT = "http://127.0.0.1:9"  # discard port: any outbound call the CLI tried would fail here


def plain_shell(home: Path) -> dict[str, str]:
    """The environment of a fresh terminal: no venv on PATH, no VIRTUAL_ENV, no AWS credentials or
    profile (so the CLI never asks STS for a default account), no telemetry, and every proxy pointed at
    a closed loopback port, so nothing can leave the machine."""
    venv_bin = Path(sys.prefix, "bin").resolve()
    path = [
        p
        for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        # neither this test's venv nor any other activated one (a venv's bin/ sits beside its pyvenv.cfg)
        if p and Path(p).resolve() != venv_bin and not (Path(p).parent / "pyvenv.cfg").exists()
    ]
    dropped = ("AWS_", "CDK_", "JSII_", "PYTHON", "VIRTUAL_ENV", "CONDA", "RAAS_PYTHON")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped) and key != "VENV" and "PROXY" not in key.upper()}
    env.update(
        PATH=os.pathsep.join(path),
        HOME=str(home),  # no ~/.cdk.json or ~/.aws of the developer's
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_CLI_TELEMETRY="true",
        CDK_DISABLE_VERSION_CHECK="1",
        HTTPS_PROXY=CLOSED_LOOPBACK_PORT,
        HTTP_PROXY=CLOSED_LOOPBACK_PORT,
        NO_PROXY="",
    )
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if not CDK_CLI.exists():
        pytest.fail(f"the pinned CDK CLI is not installed at {CDK_CLI}: run scripts/dev.sh test (it installs it)")
    command = [str(CDK_CLI), *args, "--no-notices"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_the_plain_shell_has_no_cdk_on_its_python(tmp_path: Path) -> None:
    # What made `"app": "python3 app.py"` fail: the shell's python3 is not the venv's.
    env = plain_shell(tmp_path)
    python3 = shutil.which("python3", path=env["PATH"])
    if python3 is not None:
        probe = subprocess.run([python3, "-c", "import aws_cdk"], env=env, capture_output=True, check=False)
        assert probe.returncode != 0, f"{python3} imports aws_cdk: the plain-shell synth below would prove nothing"


def test_cdk_synth_from_a_plain_shell_writes_the_four_stacks_without_findings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The one real `cdk synth` of the session (only this test runs it, so pytest-xdist cannot run it twice),
    with cdk.json as shipped: its app command and its context."""
    outdir = tmp_path_factory.mktemp("cli-cdk.out")
    result = run_cli("synth", "--quiet", "--output", str(outdir), env=plain_shell(tmp_path_factory.mktemp("home")))

    assert result.returncode == 0, f"cdk synth failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    for stack in STACKS:
        template = json.loads((outdir / f"{stack}.template.json").read_text())
        assert template["Resources"], stack
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert {name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"} == set(STACKS)
    # cdk-nag 3 runs as a policy-validation plugin inside the app: anything not acknowledged fails the
    # synth and is listed in this report.
    report = json.loads((outdir / "validation-report.json").read_text())
    assert [v for plugin in report.get("pluginReports", []) for v in plugin.get("violations", [])] == []
    errors = [
        (stack, path, entry["data"])
        for stack in STACKS
        for path, entries in json.loads((outdir / f"{stack}.metadata.json").read_text()).items()
        for entry in entries
        if entry["type"] == "aws:cdk:error"
    ]
    assert errors == []


def test_the_cli_fails_on_an_error_annotation(synthesized: dict[str, Any], tmp_path: Path) -> None:
    """Why a zero exit above means "no errors": the same CLI refuses our assembly once one stack carries an
    error annotation. The assembly is the in-process synthesis (tests/infra/conftest.py), re-read with
    --app <dir>: nothing is synthesized again."""
    outdir: Path = synthesized["outdir"]
    for pattern in ("manifest.json", "tree.json", "*.template.json", "*.metadata.json", "*.assets.json"):
        for file in outdir.glob(pattern):
            shutil.copy(file, tmp_path / file.name)
    metadata_file = tmp_path / "RaasProdSearch.metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata.setdefault("/RaasProdSearch", []).append({"type": "aws:cdk:error", "data": "fabricated error for the test"})
    metadata_file.write_text(json.dumps(metadata))

    result = run_cli("synth", "--quiet", "--app", str(tmp_path), env=plain_shell(tmp_path))

    assert result.returncode != 0
    assert "fabricated error for the test" in result.stdout + result.stderr


def test_the_app_command_explains_a_missing_venv(tmp_path: Path) -> None:
    env = {**plain_shell(tmp_path), "VENV": str(tmp_path / "no-venv")}
    result = subprocess.run([str(ROOT / "scripts" / "cdk-app")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "scripts/dev.sh test" in result.stderr
