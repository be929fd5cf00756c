"""The demo county lives in the geoservice/demo/ package only: no code, page or script names its
code or its coordinates (maps centre on the service area, checks use the imported areas)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_ONLY = re.compile(r"320999|120\.26\b|33\.78\b")
FOLDERS = ("geoservice", "layers", "static", "scripts", "bench", "migrations")
SUFFIXES = {".py", ".html", ".js", ".css", ".sh", ""}
DEMO = ROOT / "geoservice" / "demo"


def test_the_demo_county_is_not_hard_coded_outside_the_demo():
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or path.suffix not in SUFFIXES or DEMO in path.parents:
                continue
            if "__pycache__" in path.parts:
                continue
            for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
                if DEMO_ONLY.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
