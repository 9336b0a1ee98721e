"""The CLI's own logic: `key=value` parsing, path expansion, progress output, and the lazy hand-over from `raas`."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from raas_client import cli


def test_assignments_nest_dotted_keys_and_read_json_values() -> None:
    patch = cli.parse_assignments(
        [
            "temperature=0.2",
            "chunking.size=300",
            "chunking.strategy=tokens",
            'branding.primary_color="#112233"',
            "limits={}",
            "model=gpt-4o",
        ]
    )
    assert patch == {
        "temperature": 0.2,
        "chunking": {"size": 300, "strategy": "tokens"},
        "branding": {"primary_color": "#112233"},
        "limits": {},
        "model": "gpt-4o",  # not JSON: taken as a string
    }
    assert cli.parse_assignments(["prompt_variables.company=Acme Inc", "enable_reranking=true"]) == {
        "prompt_variables": {"company": "Acme Inc"},
        "enable_reranking": True,
    }
    for bad in (["temperature"], ["=1"], ["top_k=1", "top_k.x=2"], ["chunking.size=1", "chunking=3"]):
        with pytest.raises(cli.UsageError):
            cli.parse_assignments(bad)


def test_paths_expand_files_folders_and_globs_once_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    (tmp_path / "docs" / ".git").mkdir()
    files = [tmp_path / "docs" / "a.md", tmp_path / "docs" / "deep" / "b.txt", tmp_path / "c.md", tmp_path / "docs" / ".git" / "HEAD"]
    for file in files:
        file.write_text("x")
    (tmp_path / "docs" / ".hidden.md").write_text("x")
    monkeypatch.chdir(tmp_path)
    expanded = cli.expand_paths(["docs", "*.md", "docs/deep/b.txt", "docs/**/*.txt"])
    assert expanded == [Path("docs/a.md"), Path("docs/deep/b.txt"), Path("c.md")]
    with pytest.raises(cli.UsageError, match="no such file"):
        cli.expand_paths(["missing.md"])
    with pytest.raises(cli.UsageError, match="no file matches"):
        cli.expand_paths(["*.pdf"])


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    plain = io.StringIO()
    progress = cli.make_progress(100, 2, plain)
    assert type(progress) is cli.Progress
    with progress:
        progress.advance(60)
        progress.file_done("indexed a.md")
        progress.advance(-10)  # a PUT retried from the start gives its bytes back
        progress.advance(50)
        progress.file_done("indexed b.md")
    assert plain.getvalue() == "[1/2] indexed a.md\n[2/2] indexed b.md\n"
    assert progress.done_bytes == 100

    terminal = Terminal()
    bar = cli.make_progress(2048, 1, terminal)
    assert isinstance(bar, cli.RichProgress)
    with bar:
        bar.advance(2048)
        bar.file_done("indexed big.pdf")
    shown = terminal.getvalue()
    assert "indexed big.pdf" in shown
    assert "1/1 files" in shown
    assert "2.0/2.0 kB" in shown


def test_raas_hands_api_commands_to_the_client_only_when_one_runs() -> None:
    probe = (
        "import sys, raas.cli\n"
        "raas.cli.main(['price', '--tier', 'smb'])\n"
        "assert 'raas_client' not in sys.modules, 'raas price imported the client'\n"
        "code = raas.cli.main(['usage', '--url', 'http://127.0.0.1:9'])\n"  # no key: a usage error, after the hand-over
        "assert 'raas_client.cli' in sys.modules\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "RAAS_API_KEY" in done.stderr
