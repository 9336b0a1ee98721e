"""The Lambda layer is what was tested: built for the runtime's real platform, pinned to the venv's versions,
and refused when any distribution in it differs from the one the tests ran with. No network: pip is replaced
where a build is exercised, and layers are fabricated as folders of dist-info directories."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from layers import build as layer_build
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

NUMPY_WHEEL_FOR_LAMBDA_ARM = "numpy-2.4.6-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl"


def platforms_of(command: list[str]) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]


def pip_would_take(wheel: str, command: list[str]) -> bool:
    """Whether a wheel's tags are among those the pip command accepts (pip matches manylinux_2_N tags exactly)."""
    major, minor = map(int, command[command.index("--python-version") + 1].split("."))
    platforms = platforms_of(command)
    accepted: set[Tag] = {
        *cpython_tags((major, minor), platforms=platforms),
        *compatible_tags((major, minor), interpreter=f"cp{major}{minor}", platforms=platforms),
    }
    return bool(parse_wheel_filename(wheel)[3] & accepted)


def fake_layer(directory: Path, distributions: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, version in distributions.items():
        (directory / f"{name}-{version}.dist-info").mkdir()
    return directory


@pytest.mark.parametrize(("arch", "machine"), [("arm64", "aarch64"), ("x86_64", "x86_64")])
def test_the_layer_targets_every_manylinux_level_of_amazon_linux_2023(arch: str, machine: str, tmp_path: Path) -> None:
    command = layer_build.pip_install_command(arch, "3.12", tmp_path, ["numpy"])
    platforms = platforms_of(command)
    assert platforms[0] == f"manylinux_2_34_{machine}"  # glibc 2.34: the newest the python3.12 runtime loads
    assert {f"manylinux_2_28_{machine}", f"manylinux_2_17_{machine}", f"manylinux2014_{machine}"} <= set(platforms)
    assert not any(tag.startswith(("manylinux_2_35", "manylinux_2_38", "musllinux")) for tag in platforms)
    assert [command[command.index(flag) + 1] for flag in ("--implementation", "--python-version")] == ["cp", "3.12"]
    assert "--only-binary=:all:" in command
    assert command[command.index("--constraint") + 1] == str(layer_build.LOCK)


def test_pip_takes_the_wheels_lambda_can_load_and_no_others(tmp_path: Path) -> None:
    command = layer_build.pip_install_command("arm64", "3.12", tmp_path, ["numpy"])
    assert pip_would_take(NUMPY_WHEEL_FOR_LAMBDA_ARM, command)  # manylinux2014 alone chose numpy 2.2 here
    assert pip_would_take("cryptography-50.0.2-cp311-abi3-manylinux_2_34_aarch64.whl", command)
    assert pip_would_take("grpcio-1.85.3-cp312-cp312-manylinux2014_aarch64.manylinux_2_17_aarch64.whl", command)
    assert pip_would_take("six-1.17.0-py2.py3-none-any.whl", command)
    assert not pip_would_take("numpy-9.0.0-cp312-cp312-manylinux_2_39_aarch64.whl", command)  # needs a newer glibc
    assert not pip_would_take("numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl", command)  # other architecture
    assert not pip_would_take("numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl", command)  # other Python


def test_a_layer_with_another_version_than_the_tests_is_refused(tmp_path: Path) -> None:
    layer = fake_layer(tmp_path, {"numpy": "2.2.6", "pydantic_core": "2.50.5", "Events": "0.5"})
    tested = {"numpy": "2.4.6", "pydantic-core": "2.50.5", "events": "0.5"}
    with pytest.raises(layer_build.LayerMismatchError) as refused:
        layer_build.check_layer(layer, tested)
    assert "numpy: layer 2.2.6, tests ran with 2.4.6" in str(refused.value)
    assert "pydantic" not in str(refused.value)


def test_a_layer_with_a_distribution_the_tests_never_had_is_refused(tmp_path: Path) -> None:
    layer = fake_layer(tmp_path, {"numpy": "2.4.6", "exceptiongroup": "1.2.0"})
    with pytest.raises(layer_build.LayerMismatchError, match=r"exceptiongroup==1.2.0 is in the layer but not in the test venv"):
        layer_build.check_layer(layer, {"numpy": "2.4.6"})


def test_a_matching_layer_passes_with_names_normalized(tmp_path: Path) -> None:
    layer = fake_layer(tmp_path, {"pydantic_core": "2.50.5", "Events": "0.5", "python_dateutil": "2.9.0.post0"})
    tested = {"pydantic-core": "2.50.5", "events": "0.5", "python-dateutil": "2.9.0.post0"}
    assert layer_build.check_layer(layer, tested) == tested


def test_the_check_reads_the_venv_the_tests_run_in(tmp_path: Path) -> None:
    numpy_here = metadata.version("numpy")
    layer_build.check_layer(fake_layer(tmp_path / "same", {"numpy": numpy_here}))
    with pytest.raises(layer_build.LayerMismatchError, match="numpy"):
        layer_build.check_layer(fake_layer(tmp_path / "older", {"numpy": "1.0.0"}))


def test_the_build_fails_when_pip_installs_another_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole build path, with pip replaced by one that lays down numpy 2.2.6 (what manylinux2014 gave)."""
    commands: list[list[str]] = []

    def pip_installing_old_numpy(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        fake_layer(Path(command[command.index("--target") + 1]), {"numpy": "2.2.6"})
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(layer_build, "BUILD", tmp_path)
    monkeypatch.setattr(layer_build.subprocess, "run", pip_installing_old_numpy)

    with pytest.raises(layer_build.LayerMismatchError, match=r"numpy: layer 2\.2\.6, tests ran with"):
        layer_build.build("arm64")
    assert platforms_of(commands[0])[0] == "manylinux_2_34_aarch64"
    with pytest.raises(layer_build.LayerMismatchError):
        layer_build.build("arm64")  # the stamp skips pip, never the check
    assert len(commands) == 1


def test_the_venv_runs_exactly_the_locked_runtime_closure() -> None:
    """One set of pins for both sides: the lock covers every distribution the runtime dependencies pull in
    (for the cp312 Lambda targets and this interpreter), and the venv holds each at the locked version."""
    locked = layer_build.read_lock()
    environments = [layer_build.target_environment(arch) for arch in layer_build.MACHINES]
    closure = layer_build.runtime_closure(layer_build.runtime_requirements(), environments)
    assert set(closure) <= set(locked), "layers/requirements.lock misses some: run `python layers/build.py --lock`"
    assert {name: version for name, version in closure.items() if locked[name] != version} == {}
    assert {name: metadata.version(name) for name in locked if metadata.version(name) != locked[name]} == {}
