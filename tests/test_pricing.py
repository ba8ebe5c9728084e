"""The price data: every row has a source and a date, units are explicit, nothing negative."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from infralab.economics.costs import pricing


def test_shipped_price_files_are_valid() -> None:
    report = pricing.validate_folder()
    assert set(report) >= {"llm_api", "gpu_instances", "serverless_gpu", "serverless_cpu"}
    assert all(problems == [] for problems in report.values()), report


@pytest.mark.parametrize("name", sorted(pricing.SCHEMAS))
def test_every_row_has_source_and_date(name: str) -> None:
    df = pricing.load_prices(name)
    assert len(df) > 0
    assert (df["source"].str.strip() != "").all()
    assert df["as_of"].str.match(r"^\d{4}-\d{2}(-\d{2})?$").all()
    for col in pricing.SCHEMAS[name].prices:
        assert (df[col].dropna() >= 0).all()


def test_price_columns_name_their_unit() -> None:
    for schema in pricing.SCHEMAS.values():
        for col in schema.prices:
            assert col.startswith("usd_per_") or col == "value", col


def test_known_prices_match_the_sources() -> None:
    api = pricing.load_prices("llm_api").set_index("model")
    assert api.loc["gpt-4o-mini", "usd_per_1m_input_tokens"] == pytest.approx(0.15)
    assert api.loc["gpt-4o-mini", "usd_per_1m_output_tokens"] == pytest.approx(0.60)
    gpus = pricing.load_prices("gpu_instances")
    p5 = gpus[(gpus["instance"] == "p5.48xlarge") & (gpus["pricing"] == "on_demand")].iloc[0]
    assert p5["usd_per_gpu_hour"] == pytest.approx(55.04 / 8)
    modal = pricing.load_prices("serverless_gpu")
    h100 = modal[(modal["provider"] == "modal") & (modal["gpu"] == "H100")].iloc[0]
    assert h100["usd_per_second"] == pytest.approx(0.001097, rel=1e-3)


def test_a_price_without_a_named_publisher_is_not_kept() -> None:
    gpus = pricing.load_prices("gpu_instances")
    lam = gpus[(gpus["provider"] == "lambda") & (gpus["instance"] == "1x H100 SXM")]
    assert sorted(lam["usd_per_hour"]) == [4.29]


def test_missing_price_stays_missing() -> None:
    # no source gives a reserved price for a single H100: the loader says so, never guesses
    with pytest.raises(pricing.PricingError, match="no reserved price"):
        pricing.gpu_hourly("H100", "reserved")
    vms = pricing.load_prices("cpu_vm")
    assert set(vms["pricing"]) == {"on_demand"}  # no reserved CPU VM rate was found


def test_every_price_row_cites_a_url_or_repository_file_and_a_date() -> None:
    for name in pricing.SCHEMAS:
        df = pricing.load_prices(name)
        for source in df["source"]:
            assert pricing.source_is_citable(source), (name, source)
            assert "shared" + "/" not in source and "DESIGN" + ".md" not in source, (name, source)
        assert df["as_of"].str.match(r"^\d{4}-\d{2}(-\d{2})?$").all(), name


@pytest.mark.parametrize(
    "source",
    [
        "." + "./shared/PRICING" + "_SOURCES.md",
        "/work" + "/shared/x.md",
        "the kit's price notes",
        "DESIGN" + ".md",
    ],
)
def test_a_source_outside_the_repository_is_refused(tmp_path: Path, source: str) -> None:
    folder = _copy(tmp_path)
    _append(folder, "llm_api", f"acme,cheap-model,0.1,0.2,{source},2026-01-01,")
    problems = pricing.validate_folder(folder)["llm_api"]
    assert any("neither a web address" in p for p in problems), problems


def test_lambda_and_cloud_run_facts_are_sourced() -> None:
    mb, source, _ = pricing.serverless_fact("aws", "lambda", "memory_mb_per_vcpu")
    assert mb == 1769 and source.startswith("https://docs.aws.amazon.com/lambda/")
    tiers = pricing.lambda_tiers("arm64")
    assert [t[0] for t in tiers] == [0, 7.5e9, 18.75e9]
    assert tiers[0][1] == pytest.approx(0.0000133334)
    assert pricing.serverless_cpu_price("gcp", "cloud_run_request_based", "memory")[0] == (
        pytest.approx(0.0000025)
    )
    assert pricing.serverless_cpu_price("gcp", "cloud_run_request_based", "requests")[0] == 0.40
    vm = pricing.cpu_vm("c7i.large").iloc[0]
    assert vm["usd_per_hour"] == pytest.approx(0.08925) and vm["vcpu"] == 2


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "pricing"
    shutil.copytree(pricing.PRICING_DIR, folder)
    return folder


def _append(folder: Path, name: str, line: str) -> None:
    with (folder / f"{name}.csv").open("a") as fh:
        fh.write(line + "\n")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("acme,cheap-model,0.1,0.2,,2026-01-01,", "source is empty"),
        ("acme,cheap-model,0.1,0.2,somewhere,,", "as_of is empty"),
        ("acme,cheap-model,0.1,0.2,somewhere,last week,", "not a date"),
        ("acme,cheap-model,-0.1,0.2,somewhere,2026-01-01,", "negative"),
        ("acme,cheap-model,free,0.2,somewhere,2026-01-01,", "not a number"),
        ("acme,cheap-model,,0.2,somewhere,2026-01-01,", "usd_per_1m_input_tokens is empty"),
    ],
)
def test_bad_row_fails_validation(tmp_path: Path, line: str, expected: str) -> None:
    folder = _copy(tmp_path)
    _append(folder, "llm_api", line)
    with pytest.raises(pricing.PricingError, match=expected) as err:
        pricing.load_prices("llm_api", folder)
    assert "row 15" in str(err.value)  # header is row 1, 13 good rows, then the bad one
    assert pricing.validate_folder(folder)["llm_api"]


def test_bad_gpu_row_fails(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _append(folder, "gpu_instances", "acme,x1,H100,0,80,monthly,2.0,us,somewhere,2026-01-01,")
    problems = pricing.validate_folder(folder)["gpu_instances"]
    assert any("pricing 'monthly'" in p for p in problems)
    assert any("gpu_count" in p for p in problems)


def test_unitless_column_fails(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "llm_api.csv"
    text = path.read_text().replace("usd_per_1m_input_tokens", "price_in", 1)
    path.write_text(text)
    with pytest.raises(pricing.PricingError, match="missing column"):
        pricing.load_prices("llm_api", folder)


def test_unknown_file_and_gpu_give_hints(tmp_path: Path) -> None:
    with pytest.raises(pricing.PricingError, match="known"):
        pricing.load_prices("llm_apis")
    with pytest.raises(pricing.PricingError, match="GPUs with prices"):
        pricing.gpu_hourly("H1000")
    with pytest.raises(pricing.PricingError, match="not found"):
        pricing.load_prices("llm_api", tmp_path)
    (tmp_path / "mystery.csv").write_text("a,b\n1,2\n")
    assert pricing.validate_folder(tmp_path)["mystery"]


def test_an_edited_price_file_is_read_again(tmp_path: Path) -> None:
    """An instructor who edits a CSV sees the new price without restarting the kernel."""
    folder = _copy(tmp_path)
    path = folder / "llm_api.csv"
    price = pricing.load_prices("llm_api", folder).iloc[0]["usd_per_1m_input_tokens"]
    header, first, *rest = path.read_text().splitlines(keepends=True)
    cells = first.split(",")
    cells[2] = f"{price + 1.25:.2f}"
    staged = folder / "llm_api.csv.new"
    staged.write_text("".join([header, ",".join(cells), *rest]))
    os.replace(staged, path)  # how editors and git write a file
    edited = pricing.load_prices("llm_api", folder).iloc[0]["usd_per_1m_input_tokens"]
    assert edited == pytest.approx(price + 1.25)


def test_lesson_06_simulated_round_trip_is_the_published_figure() -> None:
    """Lesson 06 sleeps a round trip between the cloud app and the LLM server: the value it
    names in prose and the one its code sleeps are the row in datasets/pricing/network.csv."""
    import json

    from infralab.core.paths import REPO_ROOT

    row = pricing.round_trip("within Europe regions")
    assert row["source"].startswith("https://") and row["as_of"] == "2019-10-31"
    cells = json.loads((REPO_ROOT / "course" / "06_hybrid_rag.ipynb").read_text())["cells"]
    text = ["".join(c["source"]) for c in cells]
    prose = next(t for t in text if "**simulated, not measured**" in t)
    assert f"**{float(row['value']):g} ms**" in prose and row["as_of"] in prose
    code = "\n".join(t for t, c in zip(text, cells, strict=True) if c["cell_type"] == "code")
    assert 'pricing.round_trip("within Europe regions")' in code
    assert "network_delay_ms=ROUND_TRIP_MS" in code and "network_delay_ms=20" not in code
    with pytest.raises(pricing.PricingError, match="known"):
        pricing.round_trip("between the Moon and Mars")
