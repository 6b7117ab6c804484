"""After `coverage run -m pytest -m "$(FAST)"` (`make coverage-fast`): does the fast subset exercise every module?

A module of core/ or domains/ passes when one of its functions ran; a module of declarations only, and a
package's ``__init__`` (its job: exports, a domain's ``plugin``), pass when imported. ``__main__`` modules run as
programs, in subprocesses that coverage does not follow: not counted. Prints the modules that fail and exits 1
when there is one; the list is what to cover with a fast test (or what proves a test wrongly marked). Reads
coverage's JSON report (coverage >= 7.5: per-function regions).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "domains")


def unexercised(report: dict) -> dict[str, str]:
    """relative path -> why, for every module of PACKAGES that the run did not exercise."""
    files = {Path(name).resolve(): data for name, data in report["files"].items()}
    out = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            data = files.get(path.resolve())
            if path.name == "__main__.py":
                continue
            if data is None or not (data["executed_lines"] or not data["summary"]["num_statements"]):
                out[rel] = "never imported"
                continue
            if path.name == "__init__.py":
                continue
            functions = {name: f for name, f in data.get("functions", {}).items() if name and f["summary"]
                         ["num_statements"]}
            if functions and not any(f["executed_lines"] for f in functions.values()):
                out[rel] = f"imported, but none of its {len(functions)} functions ran"
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "coverage.json"
        subprocess.run([sys.executable, "-m", "coverage", "json", "-q", "-o", str(report)], cwd=ROOT, check=True)
        missing = unexercised(json.loads(report.read_text()))
    for rel, why in missing.items():
        print(f"{rel}: {why}")
    total = sum(1 for top in PACKAGES for p in (ROOT / top).rglob("*.py") if p.name != "__main__.py")
    print(f"{total - len(missing)} of {total} modules exercised by the fast subset")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
