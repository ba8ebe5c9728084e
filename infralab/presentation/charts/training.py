"""Charts for lesson 08: learning curve, spot interruptions, reserved capacity, fleet."""

from __future__ import annotations

import altair as alt
import pandas as pd

from infralab.presentation.charts import titled

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "fleet_timeline",
    "learning_curve",
    "reserved_chart",
    "spot_chart",
    "waste_chart",
]


def learning_curve(history: list[dict[str, float]], subtitle: str = "measured now") -> alt.Chart:
    """Loss and accuracy per epoch, training vs validation."""
    df = pd.DataFrame(history)
    long = df.melt(id_vars="epoch", var_name="series", value_name="value")
    long["metric"] = long["series"].str.split("_").str[1]
    long["split"] = long["series"].str.split("_").str[0]
    chart = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch (passes over the training split)"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("split:N", title="split"),
            tooltip=["epoch", "split", "metric", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=260, height=180)
        .facet(column=alt.Column("metric:N", title="cross-entropy loss (nats) | accuracy (0-1)"))
        .resolve_scale(y="independent")
    )
    return titled(chart, "Learning curve of the routing head", subtitle)


def spot_chart(sweep: pd.DataFrame, subtitle: str) -> alt.Chart:
    """Cost and time to finish against the checkpoint interval, spot vs on-demand."""
    cost = sweep.melt(
        id_vars="interval_h", value_vars=["spot_usd", "on_demand_usd"], var_name="option",
        value_name="usd",
    )  # fmt: skip
    cost["option"] = cost["option"].map({"spot_usd": "spot", "on_demand_usd": "on-demand"})
    time_ = sweep.melt(
        id_vars="interval_h", value_vars=["spot_hours_mean", "on_demand_hours"],
        var_name="option", value_name="hours",
    )  # fmt: skip
    time_["option"] = time_["option"].map(
        {"spot_hours_mean": "spot", "on_demand_hours": "on-demand"}
    )
    x = alt.X("interval_h:Q", title="checkpoint interval (hours)", scale=alt.Scale(type="log"))
    left = (
        alt.Chart(cost)
        .mark_line(point=True)
        .encode(x=x, y=alt.Y("usd:Q", title="cost of the run (USD)"), color="option:N")
        .properties(width=260, height=200)
    )
    right = (
        alt.Chart(time_)
        .mark_line(point=True)
        .encode(x=x, y=alt.Y("hours:Q", title="time to finish (hours)"), color="option:N")
        .properties(width=260, height=200)
    )
    return titled(left | right, "Spot interruptions: what the checkpoint interval buys", subtitle)


def reserved_chart(trap: pd.DataFrame, break_even: float, subtitle: str) -> alt.Chart:
    """USD per useful GPU-hour of a reservation vs on-demand, against utilization."""
    long = trap.melt(id_vars="utilization", var_name="option", value_name="usd")
    long["option"] = long["option"].map(
        {"reserved_usd_per_useful_h": "reserved", "on_demand_usd_per_useful_h": "on-demand"}
    )
    lines = (
        alt.Chart(long)
        .mark_line()
        .encode(
            x=alt.X(
                "utilization:Q", title="utilization the team reaches", axis=alt.Axis(format="%")
            ),
            y=alt.Y("usd:Q", title="USD per useful GPU-hour"),
            color="option:N",
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"utilization": [break_even]}))
        .mark_rule(strokeDash=[4, 4])
        .encode(x="utilization:Q")
    )
    return titled(
        (lines + rule).properties(width=420, height=220),
        f"The reserved-capacity trap: below {break_even:.0%} utilization the discount is a loss",
        subtitle,
    )


def fleet_timeline(jobs: pd.DataFrame, util: pd.DataFrame, n_gpus: int) -> alt.Chart:
    """Each job's wait and run as bars, and the fleet's measured utilization over the day."""
    jobs = jobs.copy()
    bars = (
        alt.Chart(jobs)
        .mark_bar()
        .encode(
            x=alt.X("start_h:Q", title="hour of the day (compressed time)"),
            x2="end_h:Q",
            y=alt.Y("job:N", sort=alt.EncodingSortField("start_h"), title=None, axis=None),
            color=alt.Color("kind:N", title="job kind"),
            tooltip=["job", "kind", "gpu", "priority", alt.Tooltip("wait_h:Q", format=".2f")],
        )
        .properties(width=480, height=220)
    )
    area = (
        alt.Chart(util)
        .mark_area(opacity=0.6, interpolate="step-after")
        .encode(
            x=alt.X("hour:Q", title="hour of the day (compressed time)"),
            y=alt.Y(
                "utilization:Q", title=f"share of {n_gpus} GPUs busy", axis=alt.Axis(format="%")
            ),
        )
        .properties(width=480, height=120)
    )
    return titled(
        alt.vconcat(bars, area),
        "A day on a shared fleet, run by Ray",
        "measured now: start and end times recorded inside each Ray task",
    )


def waste_chart(curve: pd.DataFrame, chosen_h: float, subtitle: str) -> alt.Chart:
    """Expected wasted hours against the checkpoint interval, with one chosen interval marked.

    ``curve`` holds ``interval_h`` and one column per series (``waste_h`` and, when present,
    ``waste_formula_h``); ``chosen_h`` is drawn as a vertical rule.
    """
    names = {"waste_h": "simulated", "waste_formula_h": "formula"}
    cols = [c for c in names if c in curve]
    long = curve.melt(id_vars="interval_h", value_vars=cols, var_name="series", value_name="h")
    long["series"] = long["series"].map(names)
    x = alt.X(
        "interval_h:Q", title="checkpoint interval (hours of work)", scale=alt.Scale(type="log")
    )
    lines = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(x=x, y=alt.Y("h:Q", title="expected wasted time (hours)"), color="series:N")
    )
    rule = (
        alt.Chart(pd.DataFrame({"interval_h": [float(chosen_h)], "label": ["your interval"]}))
        .mark_rule(color="firebrick", strokeDash=[4, 3])
        .encode(x="interval_h:Q", tooltip=["label:N", alt.Tooltip("interval_h:Q", format=".2f")])
    )
    return titled((lines + rule).properties(width=420, height=240),
                  "Waste under spot preemption against the checkpoint interval", subtitle)  # fmt: skip
