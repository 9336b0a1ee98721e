"""Size of the console's initial JavaScript, gzipped, beside the total of all its JavaScript.

    python bench/console_bundle.py [--dist console/dist] [--limit-kb 400] [--build] [--json]

"Initial" is what a browser must fetch before the first page draws: the entry chunk named by
index.html in Vite's manifest (dist/.vite/manifest.json, `build.manifest`) plus every chunk it
imports statically, transitively. Chunks reached only through dynamic imports (the pages,
loaded with React.lazy) are not initial. Each file is gzipped at level 9, as a CDN would serve it.
Exits 1 if the initial size is over the limit (the issue's target: 400 KB), 2 if there is no build.

It also checks what the console's CSP (script-src 'self', no 'unsafe-inline', no 'unsafe-eval')
needs of the build: no inline <script> or on*= handler in index.html, no eval/new Function in any
chunk; a finding exits 1 too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KB = 1024


def gzipped_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def initial_chunks(manifest: dict[str, dict[str, object]]) -> list[str]:
    """Manifest keys of the entry chunk and everything it imports statically (not dynamic imports)."""
    entries = [key for key, chunk in manifest.items() if chunk.get("isEntry")]
    seen: list[str] = []
    stack = list(entries)
    while stack:
        key = stack.pop()
        if key in seen or key not in manifest:
            continue
        seen.append(key)
        imports = manifest[key].get("imports", [])
        if isinstance(imports, list):
            stack.extend(str(i) for i in imports)
    return seen


SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.IGNORECASE | re.DOTALL)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
EVAL = re.compile(r"\beval\(|\bnew Function\(")


def csp_findings(dist: Path) -> list[str]:
    """What a script-src 'self' policy without unsafe-inline/unsafe-eval would block in the build."""
    findings = []
    html = (dist / "index.html").read_text()
    for attrs, body in SCRIPT_TAG.findall(html):
        if "src=" not in attrs or body.strip():
            findings.append("index.html has an inline <script>")
    if INLINE_HANDLER.search(html):
        findings.append("index.html has an inline on*= event handler")
    for chunk in sorted((dist / "assets").rglob("*.js")):
        if EVAL.search(chunk.read_text(errors="replace")):
            findings.append(f"{chunk.name} calls eval or new Function")
    return findings


def measure(dist: Path) -> dict[str, object]:
    manifest_path = dist / ".vite" / "manifest.json"
    manifest: dict[str, dict[str, object]] = json.loads(manifest_path.read_text())
    initial_keys = initial_chunks(manifest)
    initial_files = sorted({str(manifest[k]["file"]) for k in initial_keys if str(manifest[k]["file"]).endswith(".js")})
    all_js = sorted(p for p in (dist / "assets").rglob("*.js"))
    initial = {f: gzipped_size(dist / f) for f in initial_files}
    total_gz = sum(gzipped_size(p) for p in all_js)
    total_raw = sum(p.stat().st_size for p in all_js)
    return {
        "initial_files": initial,
        "initial_gzip_bytes": sum(initial.values()),
        "initial_raw_bytes": sum((dist / f).stat().st_size for f in initial_files),
        "total_js_files": len(all_js),
        "total_gzip_bytes": total_gz,
        "total_raw_bytes": total_raw,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "console" / "dist")
    parser.add_argument("--limit-kb", type=float, default=400.0)
    parser.add_argument("--build", action="store_true", help="run `npm run build` in console/ first")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    if args.build:
        npm = shutil.which("npm")
        if npm is None:
            print("npm is not on PATH", file=sys.stderr)
            return 2
        subprocess.run([npm, "run", "build"], cwd=ROOT / "console", check=True)  # noqa: S603 - fixed argv, no shell
    if not (args.dist / ".vite" / "manifest.json").is_file():
        print(f"no build at {args.dist} (run: cd console && npm ci && npm run build)", file=sys.stderr)
        return 2
    figures = measure(args.dist)
    findings = csp_findings(args.dist)
    initial_kb = int(figures["initial_gzip_bytes"]) / KB  # type: ignore[call-overload]
    ok = initial_kb <= args.limit_kb
    if args.json:
        print(json.dumps({**figures, "limit_kb": args.limit_kb, "within_limit": ok, "csp_findings": findings}, indent=2))
    else:
        files: dict[str, int] = figures["initial_files"]  # type: ignore[assignment]
        print(f"{'initial JS (entry + static imports), gzipped':<48} {initial_kb:9.1f} KB  ({len(files)} files)")
        for name, size in sorted(files.items(), key=lambda kv: -kv[1]):
            print(f"    {name:<44} {size / KB:9.1f} KB")
        total_kb = int(figures["total_gzip_bytes"]) / KB  # type: ignore[call-overload]
        print(f"{'all JS, gzipped':<48} {total_kb:9.1f} KB  ({figures['total_js_files']} files)")
        print(f"{'target for the initial JS':<48} {args.limit_kb:9.1f} KB  -> {'within' if ok else 'OVER'}")
        print(f"{'CSP (no inline script, no eval)':<48} {'ok' if not findings else '; '.join(findings)}")
    return 0 if ok and not findings else 1


if __name__ == "__main__":
    sys.exit(main())
