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
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infralab.core.paths import REPO_ROOT

VEGA_MIMES = (
    "application/vnd.vegalite.v6+json",
    "application/vnd.vegalite.v5+json",
    "application/vnd.vegalite.v4+json",
    "application/vnd.vega.v5+json",
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BUNDLE = "_static/vega-bundle.js"
EXECUTED = "_executed"
REMOTE_IMAGE = re.compile(r"!\[([^\]]*)\]\(https?://[^)]*\)")
# A lab's answer markers (nbgrader's); the page shows the solution without them.
SOLUTION_MARKER = re.compile(r"^[ \t]*#+[ \t]*(BEGIN|END) SOLUTION[ \t]*(\n|$)", re.M)
ALTAIR_SETUP = """
import altair as _alt

def _infralab_site_renderer(spec, **_):
    return {"application/vnd.vegalite.v6+json": spec, "text/plain": "<Altair chart>"}

_alt.renderers.register("infralab-site", _infralab_site_renderer)
_alt.renderers.enable("infralab-site")
del _alt, _infralab_site_renderer
"""

# Extends nbconvert's lab template; every block that would load a script from a CDN is emptied.
PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<link rel="stylesheet" href="{{ resources.site_prefix }}_static/site.css">
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
<nav class="infralab-nav">{{ resources.site_nav }}</nav>
{{ resources.site_banner }}
{%- endblock body_header -%}
{%- block body_footer -%}
<nav class="infralab-nav">{{ resources.site_nav }}</nav>
<script src="{{ resources.site_prefix }}_static/vega-bundle.js"></script>
<script src="{{ resources.site_prefix }}_static/charts.js"></script>
{{ super() }}
{%- endblock body_footer -%}
"""

CHARTS_JS = """// Draw every chart of the page with the locally bundled Vega (no network).
document.querySelectorAll(".infralab-chart").forEach((el) => {
  const spec = JSON.parse(el.querySelector("script[type='application/json']").textContent);
  const target = el.querySelector(".infralab-chart-target");
  window.vegaEmbed(target, spec, { renderer: "svg", actions: false }).catch((err) => {
    target.textContent = "chart failed to render: " + err;
    console.error(err);
  });
});
"""

SITE_CSS = """
body { max-width: 1100px; margin: 0 auto; padding: 0 1rem; }
.infralab-nav { display: flex; gap: 1.5rem; padding: 0.6rem 0; border-bottom: 1px solid #ddd;
  font-family: sans-serif; font-size: 0.9rem; }
.infralab-banner { background: #fff3cd; border: 1px solid #e0c060; padding: 0.6rem;
  margin: 0.6rem 0; font-family: sans-serif; }
.infralab-widget { border-left: 3px solid #9ab; padding: 0.3rem 0.6rem; margin: 0.3rem 0; }
.infralab-widget .hbox { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.infralab-widget .grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr));
  gap: 0.5rem; }
.infralab-widget .control { font-family: sans-serif; font-size: 0.85rem; }
.infralab-widget .control b { font-weight: 600; }
.infralab-note { font-family: sans-serif; font-size: 0.8rem; color: #666; }
table.infralab-toc { border-collapse: collapse; font-family: sans-serif; }
table.infralab-toc td, table.infralab-toc th { padding: 0.3rem 0.8rem; border-bottom: 1px solid #eee;
  text-align: left; }
"""


@dataclass
class Page:
    """One executed notebook on its way to a page."""

    source: Path  # relative to the repository root
    title: str = ""
    wall_s: float | None = None
    error: str = ""
    charts: int = 0
    widgets: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def html_name(self) -> str:
        return self.source.with_suffix(".html").as_posix()


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


# ---------------------------------------------------------------- charts and widgets
def chart_html(spec: dict[str, Any]) -> str:
    """A container the page's script fills with the chart; the spec travels inline as JSON."""
    data = json.dumps(spec).replace("</", "<\\/")
    return (
        '<div class="infralab-chart"><div class="infralab-chart-target"></div>'
        f'<script type="application/json">{data}</script></div>'
    )


def _model_id(ref: Any) -> str:
    return ref[len("IPY_MODEL_") :] if isinstance(ref, str) and ref.startswith("IPY_MODEL_") else ""


class WidgetRenderer:
    """Widgets in their last state, as static HTML (the kernel that drove them is gone)."""

    def __init__(self, state: dict[str, Any], closed: set[str] | None = None) -> None:
        self.state = state.get("state", {}) if "state" in state else state
        self.closed = closed or set()  # closed by the kernel: no view left to show
        self.charts = 0

    def render(self, model_id: str, depth: int = 0) -> str:
        if model_id in self.closed:
            return ""
        model = self.state.get(model_id)
        if model is None or depth > 20:
            return '<div class="infralab-note">(a widget whose state was not saved)</div>'
        name = model.get("model_name", "")
        s = model.get("state", {})
        desc = html.escape(str(s.get("description", "") or ""))
        label = f"<b>{desc}</b> " if desc else ""
        if "spec" in s and isinstance(s["spec"], dict):  # Altair's JupyterChart (anywidget)
            self.charts += 1
            return chart_html(s["spec"])
        if name in ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel", "AccordionModel",
                    "TabModel", "StackModel"):  # fmt: skip
            kind = {"HBoxModel": "hbox", "GridBoxModel": "grid"}.get(name, "vbox")
            inner = "".join(self.render(_model_id(c), depth + 1) for c in s.get("children", []))
            return f'<div class="{kind}">{inner}</div>'
        if name == "OutputModel":
            return "".join(self.output_html(o, depth + 1) for o in s.get("outputs", []))
        if name in ("HTMLModel", "HTMLMathModel"):
            return f'<div class="control">{label}{s.get("value", "")}</div>'
        if name == "LabelModel":
            return f'<div class="control">{label}{html.escape(str(s.get("value", "")))}</div>'
        if name in ("FloatProgressModel", "IntProgressModel"):
            value, top = s.get("value", 0), s.get("max", 100)
            return f'<progress value="{value}" max="{top}"></progress>'
        if "_options_labels" in s:  # dropdowns, toggle buttons, selection sliders
            labels, index = s["_options_labels"], s.get("index")
            if isinstance(index, (list, tuple)):
                chosen = ", ".join(str(labels[i]) for i in index)
            else:
                chosen = str(labels[index]) if isinstance(index, int) else "-"
            return f'<div class="control">{label}{html.escape(chosen)}</div>'
        if name == "ButtonModel":
            return f"<button disabled>{desc}</button>"
        if "value" in s:  # sliders, text boxes, check boxes
            value = s["value"]  # a log slider's value is the value itself, not its exponent
            shown = str(value)
            if isinstance(value, float):
                shown = (
                    f"{value:,.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:,.4g}"
                )
            if isinstance(value, list):
                shown = " to ".join(str(v) for v in value)
            return f'<div class="control">{label}{html.escape(shown)}</div>'
        return ""  # layouts, styles and other models without a view of their own

    def output_html(self, output: dict[str, Any], depth: int = 0) -> str:
        """One output captured by an Output widget."""
        kind = output.get("output_type")
        if kind == "stream":
            return f"<pre>{html.escape(output.get('text', ''))}</pre>"
        if kind == "error":
            return f"<pre>{html.escape(output.get('ename', ''))}: {html.escape(output.get('evalue', ''))}</pre>"
        data = output.get("data", {})
        for mime in VEGA_MIMES:
            if mime in data:
                self.charts += 1
                return chart_html(data[mime])
        if WIDGET_VIEW in data:
            return self.render(data[WIDGET_VIEW].get("model_id", ""), depth + 1)
        if "text/html" in data:
            value = data["text/html"]
            return "".join(value) if isinstance(value, list) else value
        if "image/svg+xml" in data:
            return "".join(data["image/svg+xml"])
        if "image/png" in data:
            return f'<img src="data:image/png;base64,{data["image/png"]}">'
        if "text/plain" in data:
            return f"<pre>{html.escape(''.join(data['text/plain']))}</pre>"
        return ""


def strip_solution_markers(source: str) -> str:
    """A cell's source without its ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines.

    The site renders the solution labs: the solution stays, the markers (instructions to
    ``build-labs``, not part of the answer) go.
    """
    return SOLUTION_MARKER.sub("", source)


def staticize(nb: Any) -> tuple[int, int]:
    """Drop speaker notes and solution markers; replace chart and widget outputs by static HTML.

    Returns the number of (charts, widgets) converted.
    """
    # speaker notes are for the presenter (slides), not for the page a student reads; folded
    # notes live in cell metadata, which no page shows, and a stray notes cell is dropped
    nb.cells = [c for c in nb.cells if "slide-notes" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        cell.get("metadata", {}).pop("speaker_notes", None)
        cell.source = strip_solution_markers(cell.source)
        if cell.cell_type == "markdown":  # remote images (the badges) need the network: text
            cell.source = REMOTE_IMAGE.sub(r"\1", cell.source)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {})
    closed = set(nb.metadata.get("infralab_site", {}).get("closed_widgets", []))
    renderer = WidgetRenderer(state, closed)
    widgets = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data:
                continue
            new = None
            for mime in VEGA_MIMES:
                if mime in data:
                    renderer.charts += 1
                    new = chart_html(data[mime])
                    break
            if new is None and WIDGET_VIEW in data and "text/html" in data:
                # a widget that brings its own static form (the self-check quizzes: every
                # answer folded in a <details>) is shown that way, not as frozen controls
                html_value = data["text/html"]
                new = "".join(html_value) if isinstance(html_value, list) else html_value
            elif (
                new is None and WIDGET_VIEW in data and data[WIDGET_VIEW].get("model_id") in closed
            ):
                new = ""  # closed by the kernel: a front end shows nothing here either
            elif new is None and WIDGET_VIEW in data:
                widgets += 1
                inner = renderer.render(data[WIDGET_VIEW].get("model_id", ""))
                new = (
                    '<div class="infralab-widget">'
                    '<div class="infralab-note">Widget in its last state (static: the kernel '
                    f"is not running). Run the notebook to move it.</div>{inner}</div>"
                )
            if new is not None:
                output["data"] = {"text/html": new}
                output.get("metadata", {}).clear()
    nb.metadata.pop("widgets", None)
    return renderer.charts, widgets


# ---------------------------------------------------------------- links between pages
MD_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s#]+)(#[^)\s]*)?\)")


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def rewrite_links(nb: Any, page: Page, pages: list[Page], root: Path, out: Path) -> None:
    """Point links at pages of the site: a notebook to its page, a student lab to its solution
    page, a Markdown document of the repository to an HTML copy. A relative link the site
    cannot serve (a missing file, a data file) keeps its text and loses the link; web links stay.
    """
    on_site = {p.source.as_posix(): p for p in pages}
    here = page.source.parent

    def target_for(link: str) -> str | None:
        if "://" in link or link.startswith("mailto:"):
            return None
        path = Path(os.path.normpath(here / link)).as_posix()
        if path.endswith(".ipynb"):
            hit = on_site.get(path) or on_site.get(path.replace("labs/", "labs/solutions/", 1))
            return _relative(Path(hit.html_name), here) if hit else None
        if path.endswith(".md") and (root / path).is_file() and not path.startswith(".."):
            html_path = Path(path).with_suffix(".html")
            write_document(root / path, out / html_path, _relative(out, (out / html_path).parent))
            return _relative(html_path, here)
        return None

    def swap(match: re.Match[str]) -> str:
        link = match.group(2)
        if "://" in link or link.startswith("mailto:"):
            return match.group(0)
        new = target_for(link)
        if new is None:
            return match.group(1)
        return f"[{match.group(1)}]({new}{match.group(3) or ''})"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = MD_LINK.sub(swap, cell.source)


def write_document(source: Path, target: Path, prefix: str) -> None:
    """A Markdown document of the repository as a plain page of the site."""
    from nbconvert.filters import markdown2html

    body = markdown2html(source.read_text(encoding="utf-8"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{source.stem}</title>'
        f'<link rel="stylesheet" href="{prefix}/_static/site.css"></head><body><main>'
        f'<nav class="infralab-nav"><a href="{prefix}/index.html">Contents</a></nav>{body}'
        "</main></body></html>",
        encoding="utf-8",
    )


# ---------------------------------------------------------------- pages
def title_of(nb: Any, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _nav(pages: list[Page], index: int, prefix: str) -> str:
    links = [f'<a href="{prefix}index.html">Contents</a>']
    if index > 0:
        prev = pages[index - 1]
        links.append(f'<a href="{prefix}{prev.html_name}">&larr; {html.escape(prev.title)}</a>')
    if index + 1 < len(pages):
        nxt = pages[index + 1]
        links.append(f'<a href="{prefix}{nxt.html_name}">{html.escape(nxt.title)} &rarr;</a>')
    return "".join(links)


def render_page(nb: Any, pages: list[Page], index: int, out_dir: Path) -> Path:
    """One executed notebook to ``out_dir/<folder>/<name>.html``."""
    import jinja2
    from nbconvert import HTMLExporter

    page = pages[index]
    prefix = "../" * len(page.source.parent.parts)
    banner = ""
    if page.error:
        banner = (
            '<div class="infralab-banner">This run stopped at an error: '
            f"<code>{html.escape(page.error)}</code>. Outputs below end there.</div>"
        )
    exporter = HTMLExporter(
        template_name="lab",
        template_file="infralab_site.html.j2",
        extra_loaders=[jinja2.DictLoader({"infralab_site.html.j2": PAGE_TEMPLATE})],
    )
    resources = {
        "metadata": {"name": page.title},
        "site_prefix": prefix,
        "site_nav": _nav(pages, index, prefix),
        "site_banner": banner,
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    target = out_dir / page.html_name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return target


def render_index(pages: list[Page], out_dir: Path, built: str) -> Path:
    """The table of contents: every page, its run time and whether it ran clean."""
    groups = {"course": "Lessons", "labs": "Labs (with solutions)"}
    sections = []
    for folder, heading in groups.items():
        rows = []
        for p in pages:
            if p.source.parts[0] != folder:
                continue
            state = "ran clean" if not p.error else f"stopped: {html.escape(p.error)}"
            wall = f"{p.wall_s:.1f}" if p.wall_s is not None else "-"
            rows.append(
                f'<tr><td><a href="{p.html_name}">{html.escape(p.title)}</a></td>'
                f"<td><code>{p.source.as_posix()}</code></td><td>{wall}</td><td>{state}</td>"
                f"<td>{html.escape(str(p.extra.get('executed_by', '')))}</td></tr>"
            )
        if rows:
            sections.append(
                f"<h2>{heading}</h2><table class='infralab-toc'><tr><th>notebook</th><th>file</th>"
                f"<th>run time (s)</th><th>run</th><th>run by</th></tr>{''.join(rows)}</table>"
            )
    text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>infralab: the course with outputs</title>
<link rel="stylesheet" href="_static/site.css"></head>
<body><main>
<h1>infralab: the course, executed</h1>
<p>Every lesson and solution lab, run top to bottom once (by the notebook tests,
<code>make notebooks</code>, or else by <code>make site</code>), with its outputs: built {built}. Numbers on these pages were measured on the machine that built the site; your own
run will differ. Widgets are shown in their last state; to move them, run the notebook.</p>
{"".join(sections)}
</main></body></html>
"""
    target = out_dir / "index.html"
    target.write_text(text, encoding="utf-8")
    return target


def write_static(out_dir: Path) -> None:
    """The Vega bundle (from vl-convert, so no CDN), the chart loader and the style sheet."""
    import vl_convert

    static = out_dir / "_static"
    static.mkdir(parents=True, exist_ok=True)
    bundle = static / "vega-bundle.js"
    if not bundle.is_file():
        bundle.write_text(vl_convert.javascript_bundle(), encoding="utf-8")
    (static / "charts.js").write_text(CHARTS_JS, encoding="utf-8")
    (static / "site.css").write_text(SITE_CSS, encoding="utf-8")


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
