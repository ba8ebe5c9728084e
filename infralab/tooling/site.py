"""The course as a static site with outputs: for students who cannot run anything, and for
instructors whose Binder or Colab launch fails in front of a room.

Why nbconvert and not jupyter-book 2: the kit already depends on nbconvert and nbclient, while
jupyter-book 2 (MyST) needs Node.js and its own build toolchain, a second stack to install in
CI and in every classroom. Each notebook is executed once, in course order (so later lessons
price what earlier ones measured): by the notebook tests, whose run ``make notebooks`` keeps
(:mod:`infralab.tooling.executed`), or, where no fresh copy of that run exists, here with nbclient. The
build keeps the executed copies and renders one HTML page per notebook plus an ``index.html``
table of contents.

Nothing is fetched from a CDN when a page opens: Altair charts are drawn by the Vega bundle
that vl-convert ships (written once to ``_static/``), and widgets are shown in their last
state, rendered to static HTML from the widget state nbclient saved (sliders with their
values, tables the widget printed, and its charts drawn by the same bundle).

Size: executing, rendering and making widgets and charts static are one build whose steps
pass the same executed notebooks along; no part is used on its own.
"""

from __future__ import annotations

import argparse
import copy
import csv
import html
import os
import sys
import time
from pathlib import Path
from typing import Any

from infralab.core.paths import REPO_ROOT
from infralab.tooling.offline_pages import (
    WidgetRenderer,
    chart_html,
    staticize,
    strip_solution_markers,
)
from infralab.tooling.site_pages import (
    Page,
    render_index,
    render_page,
    rewrite_links,
    title_of,
    write_static,
)

# Freezing charts and widgets (offline_pages) and the pages, links and index (site_pages) live
# in their own modules; callers (the notebook tests) still reach these as site.X.
_REEXPORTED = (WidgetRenderer, chart_html, strip_solution_markers)

EXECUTED = "_executed"
ALTAIR_SETUP = """
import altair as _alt

def _infralab_site_renderer(spec, **_):
    return {"application/vnd.vegalite.v6+json": spec, "text/plain": "<Altair chart>"}

_alt.renderers.register("infralab-site", _infralab_site_renderer)
_alt.renderers.enable("infralab-site")
del _alt, _infralab_site_renderer
"""

# Extends nbconvert's lab template; every block that would load a script from a CDN is emptied.


def site_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """Every lesson, then every solution lab, in course order (student labs are not rendered)."""
    root = Path(root)
    return sorted((root / "course").glob("[0-9][0-9]_*.ipynb")) + sorted(
        (root / "labs" / "solutions").glob("[0-9][0-9]_*.ipynb")
    )


# ---------------------------------------------------------------- execution
def execute(path: Path, out_path: Path, timeout_s: int = 600) -> tuple[float, str]:
    """Run a notebook top to bottom in a fresh kernel (in its own folder) and save the result.

    Returns (wall seconds, error). A failing cell stops the run, the outputs up to it are kept
    and the error is returned, so the page can say where it stopped.
    """
    import nbformat
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import CellExecutionError

    from infralab.tooling.notebooks import client_class

    nb = nbformat.read(str(path), as_version=4)
    nb = nbformat.from_dict(nbformat.validator.normalize(nb)[1])
    closed: set[str] = set()

    class Client(client_class()):  # type: ignore[misc]
        """Also notes widgets the kernel closed (tqdm's ``leave=False`` bars): the front end
        removes their views, so the page must not show their last state."""

        def process_message(self, msg, cell, cell_index):  # type: ignore[no-untyped-def]
            if msg.get("msg_type") == "comm_close":
                closed.add(msg.get("content", {}).get("comm_id", ""))
            return super().process_message(msg, cell, cell_index)

    client = Client(
        nb,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(path).parent)}},
        store_widget_state=True,
    )
    started = time.perf_counter()
    error = ""
    try:
        with client.setup_kernel():
            # Charts as Vega-Lite JSON rather than HTML that loads Vega from a CDN: the page
            # draws them with the local bundle. Only the output format changes, not a number.
            run_sync(client.kc.execute_interactive)(
                ALTAIR_SETUP, store_history=False, timeout=120, output_hook=lambda m: None
            )
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            client.set_widgets_metadata()
    except CellExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
        client.set_widgets_metadata()
    except Exception as exc:  # a dead kernel, a timeout: record it, render what ran
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    wall = time.perf_counter() - started
    nb.metadata["infralab_site"] = {
        "wall_s": round(wall, 1),
        "error": error,
        "closed_widgets": sorted(closed - {""}),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out_path))
    return wall, error


def build(
    paths: list[Path] | None = None,
    out_dir: Path | str = "artifacts/site",
    *,
    execute_notebooks: bool = True,
    root: Path = REPO_ROOT,
    executed_from: Path | str | None = None,
    reuse: bool = True,
) -> list[Page]:
    """Execute (unless told to reuse ``out_dir/_executed``) and render every notebook.

    A notebook the notebook tests already ran (``make notebooks`` writes each one whose every
    cell passed to ``executed_from``, by default ``artifacts/executed``: see
    :mod:`infralab.tooling.executed`) is rendered from that run when its copy is fresh (same notebook,
    same kit); only a missing or stale one is executed here, and the build says which.
    ``reuse=False`` executes every notebook.

    Lessons run in course order with one results folder for the whole build, so lesson 05
    prices what 02-04 measured in the same build, as it would for a student (a reused lesson
    puts the results its run saved into that folder).
    """
    root = Path(root).resolve()
    out = Path(out_dir)
    if not out.is_absolute():
        out = root / out
    sources = [Path(p).resolve() for p in paths] if paths else site_notebooks(root)
    if not sources:
        raise FileNotFoundError(f"No notebooks to render under {root}")
    pages = [Page(source=s.relative_to(root)) for s in sources]
    executed = out / EXECUTED
    if execute_notebooks:
        _execute_all(pages, sources, out, root, executed_from, reuse)
    notebooks = _read_executed(pages, executed)
    write_static(out)
    _render_pages(notebooks, pages, root, out)
    render_index(pages, out, _built_on())
    _write_timings(pages, out)
    return pages


def _execute_all(
    pages: list[Page],
    sources: list[Path],
    out: Path,
    root: Path,
    executed_from: Path | str | None,
    reuse: bool,
) -> None:
    """Run (or reuse) every notebook in order with one results folder, restored afterwards."""
    from tqdm.auto import tqdm

    from infralab.tooling import executed as executed_copies

    executed = out / EXECUTED
    results = out / "_results"
    saved = os.environ.get("INFRALAB_RESULTS")
    os.environ["INFRALAB_RESULTS"] = str(results)
    folder = Path(executed_from) if executed_from else executed_copies.executed_dir(root)
    kit = executed_copies.kit_sha256() if reuse else ""
    try:
        for page, src in zip(tqdm(pages, desc="execute", unit="notebook"), sources, strict=True):
            found = executed_copies.lookup(src, root, folder, kit) if reuse else None
            if found is not None and found.fresh:
                _reuse_copy(found, page, executed, results)
                continue
            why = found.reason if found is not None else "reuse turned off"
            tqdm.write(f"site: {page.source}: executing ({why})")
            page.wall_s, page.error = execute(src, executed / page.source)
    finally:
        if saved is None:
            os.environ.pop("INFRALAB_RESULTS", None)
        else:
            os.environ["INFRALAB_RESULTS"] = saved


def _reuse_copy(found: Any, page: Page, executed: Path, results: Path) -> None:
    """Take the notebook tests' fresh run of a page, and the results that run saved."""
    import nbformat
    from tqdm.auto import tqdm

    from infralab.tooling import executed as executed_copies

    target = executed / page.source
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(found.nb, str(target))
    executed_copies.write_results(found.nb, results)
    tqdm.write(f"site: {page.source}: rendered from {found.copy_path} (not run)")


def _read_executed(pages: list[Page], executed: Path) -> list[Any]:
    """The executed copy of every page, with its time, error, title and who executed it."""
    import nbformat

    from infralab.tooling import executed as executed_copies

    notebooks = []
    for page in pages:
        path = executed / page.source
        if not path.is_file():
            raise FileNotFoundError(
                f"No executed copy of {page.source} in {executed}: build with execution first"
            )
        nb = nbformat.read(str(path), as_version=4)
        meta = nb.metadata.get("infralab_site", {})
        page.wall_s = meta.get("wall_s", page.wall_s)
        page.error = meta.get("error", page.error)
        page.title = title_of(nb, page.source.stem)
        # a copy of the notebook tests' run says so; one executed here does not
        by = nb.metadata.get(executed_copies.META_KEY, {}).get("executed_by", "make site")
        page.extra["executed_by"] = by
        notebooks.append(nb)
    return notebooks


def _render_pages(notebooks: list[Any], pages: list[Page], root: Path, out: Path) -> None:
    """Each notebook as a static page: charts and widgets frozen, links pointing at pages."""
    from tqdm.auto import tqdm

    for index, nb in enumerate(tqdm(notebooks, desc="render", unit="page")):
        nb = copy.deepcopy(nb)
        pages[index].charts, pages[index].widgets = staticize(nb)
        rewrite_links(nb, pages[index], pages, root, out)
        render_page(nb, pages, index, out)


def _built_on() -> str:
    """When and on which machine the site was built, for the index page."""
    from infralab.core import env

    gpus = ", ".join(g.get("name", "?") for g in env.gpu_info()) or "no GPU"
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')} on {html.escape(env.cpu_model())}, "
        f"{env.usable_cores()} usable cores, {gpus}"
    )


def _write_timings(pages: list[Page], out: Path) -> None:
    """timings.csv: wall time, charts, widgets and error per notebook."""
    with (out / "timings.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["notebook", "wall_s", "charts", "widgets", "error"])
        for p in pages:
            writer.writerow([p.source.as_posix(), p.wall_s, p.charts, p.widgets, p.error])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infralab.tooling.site", description="the course, executed, as static HTML"
    )
    parser.add_argument("paths", nargs="*", help="notebooks (default: lessons and solution labs)")
    parser.add_argument("--out", default="artifacts/site")
    parser.add_argument(
        "--no-execute", action="store_true", help=f"reuse the executed copies in OUT/{EXECUTED}"
    )
    parser.add_argument(
        "--executed",
        default=None,
        help="where the notebook tests left executed copies (default: artifacts/executed, or "
        "$INFRALAB_EXECUTED); a fresh copy is rendered instead of running the notebook again",
    )
    parser.add_argument(
        "--no-reuse", action="store_true", help="execute every notebook, even with a fresh copy"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    pages = build(
        [Path(p) for p in args.paths] or None,
        args.out,
        execute_notebooks=not args.no_execute,
        executed_from=args.executed,
        reuse=not args.no_reuse,
    )
    for p in pages:
        state = "ok" if not p.error else f"ERROR {p.error}"
        print(f"{p.html_name:45} {p.wall_s or 0:6.1f} s  {p.charts:2} charts  {state}")
    failed = [p for p in pages if p.error]
    print(
        f"site: {len(pages)} pages in {Path(args.out) / 'index.html'}, "
        f"{time.perf_counter() - started:.0f} s in all; {len(failed)} stopped at an error"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
