"""Altair chart builders, one module per lesson topic; every axis has a title with units.

Importing this package switches Altair, for the whole kernel, to charts that need no network
(:func:`infralab.presentation.offline_charts.use_offline`): Altair's default HTML output loads Vega from a
CDN (``cdn.jsdelivr.net``), which an air-gapped classroom, a firewalled Binder and this kit's
CI browser cannot reach ("Error loading script"). Every chart is then a ``JupyterChart``
widget whose Vega bundle comes from vl-convert, so it draws in JupyterLab, Notebook 7, RISE,
VS Code and Colab's custom widget manager. Every chart of the kit is drawn in this package
(an engine returns data, a module here draws it; import-linter forbids the engines and the
core from importing Altair or ipywidgets), so the one switch covers every lesson, lab and the
class dashboard. A renderer chosen before (the static
site's, which draws Vega-Lite JSON with its local bundle; ``png`` or ``svg``) is left alone.
"""

from __future__ import annotations

import altair as alt

from infralab.core.errors import InfralabError
from infralab.core.faces import lazy_face
from infralab.presentation.offline_charts import use_offline

# Notebooks on Binder and Colab render inline; the default row limit would break sweeps.
alt.data_transformers.disable_max_rows()

OFFLINE = use_offline()


class ChartError(ValueError, InfralabError):
    """Data a chart cannot draw (empty, or missing a column); the message says what it needs."""


def titled(chart: alt.Chart, title: str, subtitle: str | None = None) -> alt.Chart:
    """Give a chart a title (and a subtitle that says where its numbers came from)."""
    return chart.properties(title=alt.TitleParams(title, subtitle=subtitle or []))


# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY = {}
_FACES = (
    "classroom",
    "compute_prices",
    "costs",
    "inference",
    "multistep",
    "rag_pipeline",
    "reliability",
    "serving",
    "tokens",
    "training",
)
__all__ = sorted([*_LAZY, *_FACES])

__getattr__ = lazy_face(__name__, _LAZY, _FACES)
