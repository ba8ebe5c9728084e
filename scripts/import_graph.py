"""Draw infralab's imports between its packages as Mermaid, one box per layer folder.

    python scripts/import_graph.py            # print the drawing
    python scripts/import_graph.py --write    # put it in CONTRIBUTING.md ("Layers")
    python scripts/import_graph.py --check    # exit 1 if CONTRIBUTING.md is out of step, an
                                              # arrow points up or sideways, or there is a circle

The layers are read from pyproject's import-linter contracts: the five folders top to bottom
(tooling, presentation, economics, engines, core), and inside each folder its own rows. A
node is a package or module one level inside a folder (``economics.costs``); the imports are
grimp's (the graph import-linter checks), every import counted, including those inside
functions. An arrow ``a --> b`` means a module of ``a`` imports one of ``b``. The
circle check also looks inside each package: no two of its modules import each other,
directly or round a loop. ``tests/test_import_graph.py`` runs ``--check``'s checks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "infralab"
START, END = "<!-- import-graph:start -->", "<!-- import-graph:end -->"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"


def _toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: import-linter brings tomli
        import tomli as tomllib
    return tomllib.loads(path.read_text(encoding="utf-8"))


def layers() -> list[list[str]]:
    """Every row of every layer, top to bottom, each a list of names like ``economics.costs``:
    the folders' order from the five-layer contract, each folder's rows from its own."""
    contracts = _toml(ROOT / "pyproject.toml")["tool"]["importlinter"]["contracts"]
    layer_contracts = [c for c in contracts if c["type"] == "layers"]
    folders = next(c["layers"] for c in layer_contracts if "containers" not in c)
    inside = {c["containers"][0]: c["layers"] for c in layer_contracts if "containers" in c}
    rows = []
    for folder in folders:
        short = folder.removeprefix(PACKAGE + ".")
        for row in inside.get(folder, [short]):
            names = [part.strip() for part in row.replace(":", "|").split("|")]
            rows.append([n if folder not in inside else f"{short}.{n}" for n in names])
    return rows


def folders() -> list[str]:
    """The layer folders, top to bottom (``__main__`` sits above them, a module of its own)."""
    contracts = _toml(ROOT / "pyproject.toml")["tool"]["importlinter"]["contracts"]
    rows = next(c["layers"] for c in contracts if c["type"] == "layers" and "containers" not in c)
    return [r.removeprefix(PACKAGE + ".") for r in rows if "__" not in r]


def _graph():
    import grimp

    sys.path.insert(0, str(ROOT))
    return grimp.build_graph(PACKAGE, cache_dir=None)


def edges(graph=None, depth: int = 1, within: str = PACKAGE) -> set[tuple[str, str]]:
    """(importer, imported) between the modules ``depth`` levels below ``within``."""
    graph = graph or _graph()
    prefix = within + "."
    layer_folders = set(folders())

    def name(module: str) -> str | None:
        if not module.startswith(prefix):
            return None
        parts = module[len(prefix) :].split(".")
        if within == PACKAGE and parts[0] in layer_folders:  # one level inside a folder
            return ".".join(parts[:2]) if len(parts) > 1 else None  # a folder's face: no node
        return ".".join(parts[:depth])

    out = set()
    for module in graph.modules:
        a = name(module)
        if a is None:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            b = name(imported)
            if b is not None and a != b:
                out.add((a, b))
    return out


def circles(pairs: set[tuple[str, str]]) -> list[list[str]]:
    """Groups of modules that reach each other through imports (strongly connected)."""
    nxt: dict[str, set[str]] = {}
    for a, b in pairs:
        nxt.setdefault(a, set()).add(b)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for b in nxt.get(todo.pop(), ()):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen

    found = {n: reach(n) for n in nxt}
    groups = {tuple(sorted({n} | {m for m in found[n] if n in found.get(m, ())})) for n in nxt}
    return sorted(list(g) for g in groups if len(g) > 1)


def all_circles(graph=None) -> dict[str, list[list[str]]]:
    """Circles between top-level modules, and between the modules of each package."""
    graph = graph or _graph()
    out = {}
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        found = circles(edges(graph, 1, package))
        if found:
            out[package] = found
    return out


def against_layers(pairs: set[tuple[str, str]], rows: list[list[str]]) -> list[str]:
    """Arrows that point up or sideways, and top-level modules the layers leave out."""
    level = {name: i for i, row in enumerate(rows) for name in row}
    problems = [
        f"{a} (layer {level[a] + 1}) imports {b} (layer {level[b] + 1})"
        for a, b in sorted(pairs)
        if a in level and b in level and level[a] >= level[b]
    ]
    names = {n for pair in pairs for n in pair}
    problems += [f"{n} is in no layer" for n in sorted(names - set(level))]
    return problems


def _id(name: str) -> str:
    return "m_" + name.strip("_").replace(".", "_")


def mermaid(pairs: set[tuple[str, str]], rows: list[list[str]]) -> str:
    """The drawing: a box per layer folder, inside it a box per row, top to bottom, and an
    arrow per importing pair."""
    lines = ["```mermaid", "flowchart TB"]
    open_folder = None
    for i, row in enumerate(rows, 1):
        folder = row[0].split(".")[0] if "." in row[0] else None
        if folder != open_folder:
            if open_folder is not None:
                lines.append("  end")
            if folder is not None:
                lines.append(f'  subgraph F_{folder}["{folder}"]')
            open_folder = folder
        indent = "    " if folder else "  "
        lines.append(f'{indent}subgraph L{i}["row {i}"]')
        lines += [f'{indent}  {_id(n)}["{n}"]' for n in row]
        lines.append(f"{indent}end")
    if open_folder is not None:
        lines.append("  end")
    lines += [f"  {_id(a)} --> {_id(b)}" for a, b in sorted(pairs)]
    lines.append("```")
    return "\n".join(lines)


def drawing() -> str:
    return mermaid(edges(), layers())


def in_contributing(text: str | None = None) -> str:
    """The drawing as CONTRIBUTING.md has it now (between the markers)."""
    text = CONTRIBUTING.read_text(encoding="utf-8") if text is None else text
    if START not in text or END not in text:
        raise SystemExit(f"CONTRIBUTING.md has no {START} ... {END} block")
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update CONTRIBUTING.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if anything is wrong")
    args = parser.parse_args(argv)
    graph = _graph()
    pairs, rows = edges(graph), layers()
    new = mermaid(pairs, rows)
    if args.write:
        text = CONTRIBUTING.read_text(encoding="utf-8")
        before, after = text.split(START, 1)[0], text.split(END, 1)[1]
        CONTRIBUTING.write_text(f"{before}{START}\n{new}\n{END}{after}", encoding="utf-8")
    if not args.check:
        if not args.write:
            print(new)
        return 0
    problems = against_layers(pairs, rows)
    problems += [
        f"circle in {p}: {' <-> '.join(c)}" for p, cs in all_circles(graph).items() for c in cs
    ]
    if in_contributing() != new:
        problems.append(
            "CONTRIBUTING.md's drawing is out of step: run scripts/import_graph.py --write"
        )
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
