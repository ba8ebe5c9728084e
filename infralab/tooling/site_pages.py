"""The site's pages: one HTML page per executed notebook, links between them, and the index.

Each page extends nbconvert's lab template with every CDN script emptied; the index is the
table of contents with each notebook's run time and whether it ran clean.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
