"""Altair chart builders, one module per lesson topic; every axis has a title with units."""

from __future__ import annotations

import altair as alt

# Notebooks on Binder and Colab render inline; the default row limit would break sweeps.
alt.data_transformers.disable_max_rows()


def titled(chart: alt.Chart, title: str, subtitle: str | None = None) -> alt.Chart:
    """Give a chart a title (and a subtitle that says where its numbers came from)."""
    return chart.properties(title=alt.TitleParams(title, subtitle=subtitle or []))
