"""One switch that makes every Altair chart of a kernel draw without the network.

Altair's default HTML output loads Vega from a CDN (``cdn.jsdelivr.net``): with no network a
chart shows "Error loading script". Altair's ``jupyter`` renderer in offline mode draws each
chart as a ``JupyterChart`` widget carrying the Vega bundle of vl-convert (a dependency of the
kit). This module sits in the kit's base layer so that every package that draws a chart can
call :func:`use_offline`; :mod:`infralab.presentation.charts` calls it on import.
"""

from __future__ import annotations

OFFLINE_RENDERER = "jupyter"
# Altair's own renderers that load Vega from a CDN: these are replaced, any other is kept.
CDN_RENDERERS = ("default", "html", "colab", "kaggle", "zeppelin")


def use_offline(*, force: bool = False) -> bool:
    """Draw every chart of this kernel without the network; True if charts are now offline.

    Idempotent. Leaves a renderer someone chose on purpose (any but Altair's CDN-loading HTML
    ones) unless ``force``. Returns False, leaving Altair as it was, if anywidget or
    vl-convert is missing (a chart then still draws where the CDN is reachable).
    """
    import altair as alt

    active = alt.renderers.active
    if active == OFFLINE_RENDERER and alt.renderers.options.get("offline"):
        return True
    if active not in CDN_RENDERERS and not force:
        return False
    try:
        import anywidget  # noqa: F401  (JupyterChart is an anywidget)
        import vl_convert  # noqa: F401  (the Vega bundle)
    except ImportError:
        return False
    alt.renderers.enable(OFFLINE_RENDERER, offline=True)
    return True
