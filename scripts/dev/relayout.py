"""Replayable move of the flat geoservice/ modules into domain packages (issue 14).

    .venv/bin/python scripts/dev/relayout.py move      # git mv every old module to its package
    .venv/bin/python scripts/dev/relayout.py rewrite   # rewrite old import paths (--docs: docs too)
    .venv/bin/python scripts/dev/relayout.py check     # list old-style references left (exit 1)

`move` only renames (plus the new packages' __init__ files), so git's rename detection carries
edits made on other branches to the old paths onto the moved files at the next merge. `rewrite`
is idempotent: run it again after merging a branch written against the old layout, then
`ruff check --fix --select I` and `ruff format` sort and wrap the rewritten imports.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# old module → new module (dotted). A module keeping its path is not listed.
TABLE: dict[str, str] = {
    # accounts: who is asking and what they may do
    "geoservice.accounts": "geoservice.accounts.accounts",
    "geoservice.auth": "geoservice.accounts.auth",
    "geoservice.permissions": "geoservice.accounts.permissions",
    "geoservice.scope": "geoservice.accounts.scope",
    "geoservice.audit": "geoservice.accounts.audit",
    "geoservice.ratelimit": "geoservice.accounts.ratelimit",
    "geoservice.security": "geoservice.accounts.security",
    # catalogue: the OGC collections and what reads and writes their features
    "geoservice.collections": "geoservice.catalogue.catalogue",
    "geoservice.features": "geoservice.catalogue.items",
    "geoservice.tiles": "geoservice.catalogue.tiles",
    "geoservice.editing": "geoservice.catalogue.editing",
    "geoservice.validation": "geoservice.catalogue.validation",
    "geoservice.importers": "geoservice.catalogue.importers",
    "geoservice.gdal_open": "geoservice.catalogue.gdal_open",  # sec-upload's new module
    "geoservice.exporters": "geoservice.catalogue.exporters",
    # areas: admin areas, their codes and hierarchy, the service area
    "geoservice.areas": "geoservice.areas.levels",
    "geoservice.area_import": "geoservice.areas.area_import",
    "geoservice.hierarchy": "geoservice.areas.hierarchy",
    "geoservice.hierarchy_audit": "geoservice.areas.hierarchy_audit",
    "geoservice.service_area": "geoservice.areas.service_area",
    # responsibility: 包保
    "geoservice.responsibility": "geoservice.responsibility.responsibility",
    "geoservice.roster": "geoservice.responsibility.roster",
    "geoservice.roster_export": "geoservice.responsibility.roster_export",
    "geoservice.myareas": "geoservice.responsibility.myareas",
    "geoservice.coverage": "geoservice.responsibility.coverage",
    # issues
    "geoservice.issues": "geoservice.issues.issues",
    "geoservice.attribution": "geoservice.issues.attribution",
    "geoservice.workflow": "geoservice.issues.workflow",
    "geoservice.photos": "geoservice.issues.photos",
    # the rules branch's modules (issue 17)
    "geoservice.corrections": "geoservice.issues.corrections",
    "geoservice.extensions": "geoservice.issues.extensions",
    "geoservice.holder_history": "geoservice.issues.holder_history",
    "geoservice.returns": "geoservice.issues.returns",
    "geoservice.routing_rules": "geoservice.issues.routing_rules",
    "geoservice.publications": "geoservice.ranking.publications",
    "geoservice.vocabularies": "geoservice.ranking.vocabularies",
    # ranking: 督查考核
    "geoservice.ranking": "geoservice.ranking.ranking",
    "geoservice.periods": "geoservice.ranking.periods",
    "geoservice.report": "geoservice.ranking.report",
    "geoservice.dashboard": "geoservice.ranking.dashboard",
    # maps: the figures and popups the maps draw
    "geoservice.mapdata": "geoservice.maps.mapdata",
    "geoservice.mappopups": "geoservice.maps.mappopups",
    # citizens' 红黑榜 snapshots are published rankings
    "geoservice.citizens.board": "geoservice.ranking.board",
    # demo
    "geoservice.seed": "geoservice.demo.seed",
    # edges and the helpers they share
    "geoservice.responsibility_access": "geoservice.edge.responsibility",
    "geoservice.api.access": "geoservice.edge.access",
    "geoservice.api.params": "geoservice.edge.params",
    "geoservice.area_cli": "geoservice.cli.areas",
    "geoservice.layer_cli": "geoservice.cli.layers",
    "geoservice.cli_responsibility": "geoservice.cli.responsibility",
    "geoservice.cli_notifications": "geoservice.cli.notifications",  # notify's new module
    "geoservice.health": "geoservice.api.health",
    "geoservice.assets": "geoservice.web.assets",
}

# Names that moved to another module in the tidy steps after the move: (module, name) → module.
_TILE_GRID = (
    "COUNT_LEVELS FINEST_LEVEL MAX_ZOOM WORLD Offset SHIFTS tile_in_range count_level "
    "tile_center mercator datum_offset tile_lon tile_lat tile_y"
)
MOVED_NAMES: dict[tuple[str, str], str] = {
    **{
        ("geoservice.catalogue.tiles", n): "geoservice.catalogue.tilegrid"
        for n in _TILE_GRID.split()
    },
    ("geoservice", "PROJECT_ROOT"): "geoservice.config",
    **{
        ("geoservice.catalogue.importers", n): "geoservice.catalogue.garbled"
        for n in ("garbled", "garbled_value", "garbled_problem")
    },
    ("geoservice.api", "catalogue"): "geoservice.edge.access",
    **{
        ("geoservice.api.issues", n): "geoservice.edge.issues"
        for n in ("COLLECTION", "settings", "photo_url", "allows")
    },
    ("geoservice.api.audit", "parse_audit_filters"): "geoservice.edge.params",
    **{
        ("geoservice.api.responsibility", n): "geoservice.edge.responsibility"
        for n in ("MAX_ROSTER_BYTES", "roster_upload", "run_roster_import")
    },
    **{
        ("geoservice.api.rankings", n): "geoservice.edge.rankings"
        for n in [
            "MAX_DRILL",
            "MAX_TREND",
            "PERIOD_PARAMS",
            "SCORECARD_READERS",
            "check_scorecard_access",
            "indicator_titles",
            "int_arg",
            "ranking_error",
            "ranking_payload",
            "read_rankings",
            "requested_of",
            "requested_period",
            "scorecard_or_404",
            "settings",
            "tz",
        ]
    },
    ("geoservice.issues.attribution", "BASE_LAYER"): "geoservice.registry",
    ("geoservice.areas.levels", "LOCAL_CODE"): "geoservice.registry",
    ("geoservice.api", "collection_or_404"): "geoservice.edge.access",
}

# Modules that become a package's __init__ (same dotted name, so no import changes).
INTO_PACKAGE = {
    "geoservice/demo.py": "geoservice/demo/__init__.py",
    "geoservice/cli.py": "geoservice/cli/__init__.py",
}

NEW_PACKAGES = {
    "accounts": "Accounts: who is asking and what they may do.",
    "catalogue": "The catalogue: the OGC collections and what reads and writes their features.",
    "areas": "Admin areas: levels and codes, area import, the hierarchy and the service area.",
    "responsibility": "包保: units, leaders, assignments, roster, my areas, coverage audit.",
    "issues": "Issues: report, attribution, workflow, photos.",
    "ranking": "督查考核: periods, indicators, the 通报 workbook, the 工作台's figures.",
    "maps": "What the maps draw: counts, choropleth, heat, popups.",
    "edge": "Helpers shared by the edges (api, web, cli).",
}

FOLDERS = ("geoservice", "tests", "bench", "scripts", "migrations", "layers")
TOP_FILES = ("wsgi.py",)
DOC_GLOBS = ("README.md", "docs/**/*.md")
SELF = Path(__file__).resolve()


def path_of(dotted: str) -> Path:
    return ROOT / (dotted.replace(".", "/") + ".py")


def git(*args: str) -> None:
    subprocess.run(["git", *args], cwd=ROOT, check=True)


def move() -> None:
    for name, doc in NEW_PACKAGES.items():
        init = ROOT / "geoservice" / name / "__init__.py"
        if not init.exists():  # geoservice/x/ may sit beside geoservice/x.py until it moves in
            init.parent.mkdir(exist_ok=True)
            init.write_text(f'"""{doc}"""\n', encoding="utf-8")
            git("add", str(init))
    for old, new in INTO_PACKAGE.items():
        if (ROOT / old).exists():
            (ROOT / new).parent.mkdir(exist_ok=True)
            git("mv", old, new)
    for old, new in TABLE.items():
        src = path_of(old)
        dst = path_of(new)
        if src.exists() and not dst.exists():
            dst.parent.mkdir(exist_ok=True)
            git("mv", str(src), str(dst))


def submodules(package: str) -> set[str]:
    """Names of the modules and subpackages of a package in the new layout."""
    folder = ROOT / package.replace(".", "/")
    names = {new.split(".")[-1] for new in TABLE.values() if new.rsplit(".", 1)[0] == package}
    if folder.is_dir():
        names |= {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
        names |= {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}
    return names


def is_new_package(dotted: str) -> bool:
    return (ROOT / dotted.replace(".", "/") / "__init__.py").exists() or any(
        new.startswith(dotted + ".") for new in TABLE.values()
    )


def translate(dotted: str) -> str:
    """The new spelling of a dotted reference (module, module.attribute) to the old layout."""
    parts = dotted.split(".")
    for i in range(len(parts), 1, -1):
        key = ".".join(parts[:i])
        if key in TABLE:
            rest = parts[i:]
            if is_new_package(key) and (not rest or rest[0] in submodules(key)):
                # already new (geoservice.issues.issues…), or the package itself: in prose after
                # the move, `geoservice.issues` names the package
                return dotted
            return ".".join([TABLE[key], *rest])
    return dotted


def import_from(module: str, names: list[tuple[str, str | None]]) -> list[str] | None:
    """New `from … import …` statements, or None when nothing changes."""
    out: dict[str, list[str]] = {}
    changed = False
    for name, asname in names:
        full = f"{module}.{name}"
        if full in TABLE:
            new = TABLE[full]
            parent, base = new.rsplit(".", 1)
            alias = asname or (name if base != name else None)
            out.setdefault(parent, []).append(f"{base} as {alias}" if alias else base)
            changed = True
            continue
        target = module
        if not (is_new_package(module) and name in submodules(module)):
            # `from geoservice.accounts import UserError`: the old module, not the package
            target = TABLE.get(module) or translate(module)
        target = MOVED_NAMES.get((target, name), target)
        changed |= target != module
        out.setdefault(target, []).append(f"{name} as {asname}" if asname else name)
    if not changed:
        return None
    return [f"from {m} import {', '.join(ns)}" for m, ns in out.items()]


DOTTED = re.compile(r"\bgeoservice(?:\.[A-Za-z_]\w*)+")
PATHS = re.compile(r"\bgeoservice(?:/[A-Za-z_]\w*)+\.py\b")


def rewrite_text(text: str) -> str:
    text = DOTTED.sub(lambda m: translate(m.group(0)), text)

    def path(m: re.Match) -> str:
        dotted = m.group(0)[:-3].replace("/", ".")
        if (ROOT / m.group(0)).exists():
            return m.group(0)
        if m.group(0) in INTO_PACKAGE:
            return INTO_PACKAGE[m.group(0)]
        new = TABLE.get(dotted) or translate(dotted)  # a .py path names a module, not a package
        if new == dotted:
            return m.group(0)
        target = new.replace(".", "/")
        return target + "/__init__.py" if (ROOT / target).is_dir() else target + ".py"

    return PATHS.sub(path, text)


def rewrite_python(path: Path) -> bool:
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        print(f"skipped (syntax error): {path}: {exc}", file=sys.stderr)
        return False
    lines = source.splitlines(keepends=True)
    spans: list[tuple[int, int, list[str] | None]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            print(f"relative import left alone: {path}:{node.lineno}", file=sys.stderr)
            continue
        if not node.module or not node.module.startswith("geoservice"):
            continue
        new = import_from(node.module, [(a.name, a.asname) for a in node.names])
        spans.append((node.lineno - 1, node.end_lineno, new))
    spans.sort()
    out: list[str] = []
    pos = 0
    for start, end, new in spans:
        out.append(rewrite_text("".join(lines[pos:start])))
        original = "".join(lines[start:end])
        if new is None:
            out.append(original)
        else:
            indent = re.match(r"\s*", lines[start]).group(0)
            comment = re.search(r"#.*$", lines[start].rstrip("\n")) or re.search(
                r"#.*$", lines[end - 1].rstrip("\n")
            )
            tail = f"  {comment.group(0)}" if comment else ""
            out.append("".join(f"{indent}{stmt}{tail}\n" for stmt in new))
        pos = end
    out.append(rewrite_text("".join(lines[pos:])))
    result = "".join(out)
    if result != source:
        path.write_text(result, encoding="utf-8")
        return True
    return False


def python_files() -> list[Path]:
    files = [ROOT / f for f in TOP_FILES if (ROOT / f).exists()]
    for folder in FOLDERS:
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f.resolve() != SELF and ".venv" not in f.parts]


def rewrite() -> None:
    changed = [p for p in python_files() if rewrite_python(p)]
    if "--docs" in sys.argv:  # README and docs/ last: other branches edit them meanwhile
        changed += rewrite_docs()
    py = [str(p) for p in changed if p.suffix == ".py"]
    if py:
        ruff = str(ROOT / ".venv/bin/ruff")
        subprocess.run([ruff, "check", "--fix", "--select", "I", "--quiet", *py], cwd=ROOT)
        subprocess.run([ruff, "format", "--quiet", *py], cwd=ROOT, check=True)
    for p in changed:
        print(f"rewrote {p.relative_to(ROOT)}")


def rewrite_docs() -> list[Path]:
    changed = []
    for pattern in DOC_GLOBS:
        for doc in ROOT.glob(pattern):
            text = doc.read_text(encoding="utf-8")
            new = rewrite_text(text)
            if new != text:
                doc.write_text(new, encoding="utf-8")
                changed.append(doc)
    return changed


def check() -> int:
    left = 0
    for old in TABLE:
        if path_of(old).exists():
            print(f"not moved: {path_of(old).relative_to(ROOT)}")
            left += 1
    for p in python_files():
        before = p.read_text(encoding="utf-8")
        tree = ast.parse(before)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("geoservice")
            ) and import_from(node.module, [(a.name, a.asname) for a in node.names]):
                print(f"old import: {p.relative_to(ROOT)}:{node.lineno}")
                left += 1
    return 1 if left else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "move":
        move()
    elif command == "rewrite":
        rewrite()
    elif command == "check":
        sys.exit(check())
    else:
        sys.exit(__doc__)
