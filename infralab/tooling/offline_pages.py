"""Making an executed notebook work offline: charts and widgets frozen into static HTML.

Nothing is fetched from a CDN when a page opens: Altair charts are drawn by the Vega bundle
that vl-convert ships (``_static/vega-bundle.js``, written by the site build), and widgets are
shown in their last state, rendered to static HTML from the widget state nbclient saved
(sliders with their values, tables the widget printed, and its charts drawn by the same bundle).
A lab's solution markers are dropped and remote images become their alt text.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

VEGA_MIMES = (
    "application/vnd.vegalite.v6+json",
    "application/vnd.vegalite.v5+json",
    "application/vnd.vegalite.v4+json",
    "application/vnd.vega.v5+json",
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BUNDLE = "_static/vega-bundle.js"
REMOTE_IMAGE = re.compile(r"!\[([^\]]*)\]\(https?://[^)]*\)")
# A lab's answer markers (nbgrader's); the page shows the solution without them.
SOLUTION_MARKER = re.compile(r"^[ \t]*#+[ \t]*(BEGIN|END) SOLUTION[ \t]*(\n|$)", re.M)


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
