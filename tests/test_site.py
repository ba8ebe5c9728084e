"""The executed course site: built from a real run, opened in headless Chromium.

To keep CI short, this builds the site from a real execution of three fast notebooks (a lesson
with Altair charts and a widget, the dashboard lesson whose charts are widgets, and a solution
lab): the notebook tests' run where ``make notebooks`` left a fresh executed copy, else a run
here; ``make site`` builds every notebook the same way. Each page is opened from disk with all
network requests blocked: a page that needs a CDN, logs a console error, or leaves a chart
container without an svg/canvas fails the test, and the table of contents must reach every page.
"""

from __future__ import annotations

import os
import secrets
import shutil
import urllib.parse
from pathlib import Path

import pytest

from infralab.tooling import site

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
FAST = [
    REPO_ROOT / "course" / "01_two_infrastructures.ipynb",
    REPO_ROOT / "course" / "05_cost_sliders.ipynb",
    REPO_ROOT / "labs" / "solutions" / "07_capstone.ipynb",
]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def test_widget_state_renders_statically() -> None:
    state = {
        "state": {
            "box": {
                "model_name": "VBoxModel",
                "state": {"children": ["IPY_MODEL_s", "IPY_MODEL_d"]},
            },
            "s": {"model_name": "IntSliderModel", "state": {"description": "users", "value": 42}},
            "d": {
                "model_name": "DropdownModel",
                "state": {
                    "description": "shape",
                    "_options_labels": ["steady", "spiky"],
                    "index": 1,
                },
            },
            "c": {"model_name": "AnyModel", "state": {"spec": {"mark": "bar"}}},
        }
    }
    renderer = site.WidgetRenderer(state)
    out = renderer.render("box")
    assert "<b>users</b> 42" in out and "<b>shape</b> spiky" in out
    assert 'class="infralab-chart"' in renderer.render("c") and renderer.charts == 1
    assert "not saved" in renderer.render("missing")
    # a widget the kernel closed (tqdm with leave=False) has no view in a front end either
    assert "users" not in site.WidgetRenderer(state, closed={"s"}).render("box")


def test_chart_spec_cannot_close_its_script_tag() -> None:
    out = site.chart_html({"title": "</script><script>alert(1)</script>"})
    assert out.count("</script>") == 1


def test_links_point_at_pages_of_the_site(tmp_path: Path) -> None:
    import nbformat

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "glossary.md").write_text("# Glossary\n\n**KV cache**: ...\n")
    pages = [site.Page(Path("course/01_a.ipynb")), site.Page(Path("labs/solutions/01_lab.ipynb"))]
    cell = nbformat.v4.new_markdown_cell(
        "[lab](../labs/01_lab.ipynb) [self](01_a.ipynb#top) [terms](../docs/glossary.md) "
        "[gone](02_missing.ipynb) [web](https://example.org/x.ipynb) ![img](pic.png)"
    )
    nb = nbformat.v4.new_notebook(cells=[cell])
    out = tmp_path / "site"
    site.rewrite_links(nb, pages[0], pages, tmp_path, out)
    assert nb.cells[0].source == (
        "[lab](../labs/solutions/01_lab.html) [self](01_a.html#top) [terms](../docs/glossary.html) "
        "gone [web](https://example.org/x.ipynb) ![img](pic.png)"
    )
    assert "KV cache" in (out / "docs" / "glossary.html").read_text()


def test_missing_executed_copies_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No executed copy"):
        site.build([FAST[0]], tmp_path / "site", execute_notebooks=False)


# `make test` builds the whole site once (`make site`, every lesson and solution lab, from the
# notebook tests' run) and points these tests at it; on their own they build the three fast
# notebooks.
FULL_SITE = os.environ.get("INFRALAB_SITE_DIR")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[site.Page]]:
    if FULL_SITE:
        out = Path(FULL_SITE).resolve()
        # Re-render from that build's executed copies (no second run): every notebook.
        return out, site.build(None, out, execute_notebooks=False)
    out = tmp_path_factory.mktemp("site")
    pages = site.build(FAST, out)
    return out, pages


@pytest.mark.slow
def test_site_builds_from_a_real_run(built_site: tuple[Path, list[site.Page]]) -> None:
    out, pages = built_site
    expected = site.site_notebooks(REPO_ROOT) if FULL_SITE else FAST
    assert [p.source for p in pages] == [p.relative_to(REPO_ROOT) for p in expected]
    for page in pages:
        assert not page.error, f"{page.source}: {page.error}"
        assert (out / page.html_name).is_file()
        assert (out / site.EXECUTED / page.source).is_file()
    by_name = {p.source.name: p for p in pages}
    assert by_name["01_two_infrastructures.ipynb"].charts >= 4  # plain Altair outputs
    assert by_name["05_cost_sliders.ipynb"].widgets >= 1  # the dashboard, in its last state
    assert by_name["05_cost_sliders.ipynb"].charts >= 4  # JupyterChart widgets' specs
    for page in pages:
        text = (out / page.html_name).read_text(encoding="utf-8")
        assert "cdn.jsdelivr" not in text and "unpkg.com" not in text and "cdnjs" not in text
        assert "VBox(children" not in text and "IntSlider(value" not in text


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium"
)
def test_every_page_loads_offline_and_every_chart_renders(
    built_site: tuple[Path, list[site.Page]],
) -> None:
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    out, pages = built_site
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"infralab-site-{secrets.token_hex(4)}"
    blocked: list[str] = []
    problems: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:

                def guard(route, request) -> None:  # type: ignore[no-untyped-def]
                    if request.url.startswith(("file://", "data:")):
                        route.continue_()
                    else:
                        blocked.append(request.url)
                        route.abort()

                browser.route("**/*", guard)
                page = browser.new_page()
                page.on(
                    "console",
                    lambda m: (
                        problems.append(f"{page.url}: console {m.type}: {m.text}")
                        if m.type == "error"
                        else None
                    ),
                )
                page.on("pageerror", lambda e: problems.append(f"{page.url}: page error {e}"))

                index = (out / "index.html").as_uri()
                page.goto(index)
                hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
                expected = {(out / p.html_name).as_uri() for p in pages}
                assert expected <= set(hrefs), f"the contents miss {expected - set(hrefs)}"

                for p in pages:
                    page.goto((out / p.html_name).as_uri())
                    page.wait_for_load_state("load")
                    containers = page.locator(".infralab-chart")
                    assert containers.count() == p.charts, f"{p.html_name}: chart containers"
                    if p.charts:
                        page.wait_for_function(
                            """() => [...document.querySelectorAll('.infralab-chart')]
                                 .every(c => c.querySelector('svg, canvas'))""",
                            timeout=60_000,
                        )
                    failed = page.locator(".infralab-chart-target:has-text('failed to render')")
                    assert failed.count() == 0, f"{p.html_name}: a chart failed"
                    text = page.locator("body").inner_text()
                    assert "Traceback" not in text or "raises-exception" in text
                    # the page's own navigation reaches the contents; no link points nowhere
                    assert page.locator("nav.infralab-nav a", has_text="Contents").count() >= 1
                    links = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
                    for link in links:
                        if link.startswith("file://"):
                            target = Path(urllib.parse.unquote(link[7:].split("#")[0]))
                            assert target.exists(), f"{p.html_name}: broken link {link}"
            finally:
                browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert not blocked, f"pages tried to reach the network: {blocked[:5]}"
    assert not problems, "\n".join(problems[:10])
