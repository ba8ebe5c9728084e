"""The capstone's scenarios and the numbers a decision uses, each with where it came from
(the student's measurement, the kit's recorded run, or a labelled default)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from infralab.core.errors import InfralabError
from infralab.core.results import Figure
from infralab.economics.costs import model as costs

Recommendation = Literal["traditional cloud", "AI infrastructure", "hybrid"]
Demand = Literal["volatile", "growing", "stable"]
SOURCES = ("measured", "recorded", "default", "estimate", "missing")


# People cost: the mean pay of US software developers (SOC 15-1252) from the Bureau of Labor
# Statistics' Occupational Employment and Wage Statistics, May 2022 estimates (released
# 2023-04-25): an annual mean wage of 132,930 USD, which BLS computes as the hourly mean x 2,080
# hours, so 132,930 / 2,080 = 63.91 USD/h. Wages only (no benefits or overhead): set your own
# rate in the scenario. A self-hosted GPU service needs someone to run it.
ENGINEER_USD_PER_HOUR = Figure(
    round(132_930 / 2080, 2),
    "USD/h",
    "default",
    "https://www.bls.gov/oes/ (news release 2023-04-25, May 2022 estimates)",
    "BLS mean wage of software developers, May 2022 (132,930 USD/year / 2,080 h)",
    name="engineer cost per hour",
)
HOURS_PER_FULL_TIME_MONTH = 2080 / 12  # 40 h x 52 weeks / 12: a whole hire, when the team has none
# Bytes a token takes on the wire: "1 token ~= 4 characters in English" (OpenAI help centre).
BYTES_PER_TOKEN = Figure(
    4.0,
    "bytes/token",
    "default",
    "https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them",
    "rule of thumb for English text",
    name="bytes per token",
)


class DecisionError(ValueError, InfralabError):
    """Bad scenario input; the message names the field and what is allowed."""

    hint = "infralab.economics.decision.SCENARIOS shows a complete scenario to copy."


# One number the decision uses, with where it came from: the kit's one provenance type
# (``infralab.core.results.Figure``: value, unit, origin, source, detail, name).
Input = Figure


@dataclass(frozen=True)
class Scenario:
    """A startup, described the way the article's decision rules need it.

    The traffic figures are *scenario assumptions* (a student edits them); prices and
    throughputs never come from here.
    """

    key: str
    title: str
    story: str
    workload: costs.Workload
    demand: Demand
    ml_engineers: int
    sensitive_data: bool
    app_on_cloud: tuple[str, ...]
    rag: bool = False
    chunks_embedded_per_day: float = 0.0
    # Quality is a bar, not a verdict: the share of questions the product must answer with every
    # key fact (an assumption, like the traffic). The 135M model's options are allowed when its
    # measured correctness (lesson 09's quality run) reaches it; True/False here overrides that.
    min_answer_correctness: float = 0.9
    small_model_ok: bool | None = None
    article_choice: str = ""
    # hours a month of ML-ops work (serving, upgrades, on-call) a self-hosted GPU model takes:
    # a scenario assumption like the traffic, priced at ENGINEER_USD_PER_HOUR
    ops_hours_per_month: float = 20.0
    engineer_usd_per_hour: float | None = None  # None: the sourced default above

    def __post_init__(self) -> None:
        if self.demand not in ("volatile", "growing", "stable"):
            raise DecisionError(
                f"demand must be 'volatile', 'growing' or 'stable', not {self.demand!r}"
            )
        if int(self.ml_engineers) != self.ml_engineers or self.ml_engineers < 0:
            raise DecisionError(
                f"ml_engineers must be a whole number >= 0, not {self.ml_engineers!r}"
            )
        if self.ops_hours_per_month < 0 or (self.engineer_usd_per_hour or 0) < 0:
            raise DecisionError("ops_hours_per_month and engineer_usd_per_hour must be >= 0")
        if self.chunks_embedded_per_day < 0:
            raise DecisionError("chunks_embedded_per_day must be >= 0")
        if not 0 < self.min_answer_correctness <= 1:
            raise DecisionError(
                "min_answer_correctness is a share of questions: above 0 and at most 1, "
                f"not {self.min_answer_correctness!r}"
            )
        if not isinstance(self.workload, costs.Workload):
            raise DecisionError("workload must be an infralab.economics.costs.model.Workload")

    def with_traffic(self, requests_per_day: float) -> Scenario:
        """The same startup at another volume (for the 'what would flip it' sweep)."""
        return replace(self, workload=self.workload.at(requests_per_day))


SCENARIOS: dict[str, Scenario] = {
    "saas": Scenario(
        key="saas",
        title="B2B SaaS adding AI summaries",
        story=(
            "A business SaaS product with three engineers and nobody who runs ML systems adds "
            "two AI features: summaries of meetings and automatic labels on support tickets."
        ),
        workload=costs.Workload(
            requests_per_day=2_000,
            tokens_in=2_000,
            tokens_out=250,
            latency_target_s=10.0,
            traffic="business_hours",
        ),
        demand="volatile",
        ml_engineers=0,
        sensitive_data=False,
        app_on_cloud=("web app", "auth", "billing", "database", "ticket store"),
        min_answer_correctness=0.8,  # a person reads each summary and label before it is used
        article_choice="traditional cloud plus external AI APIs",
    ),
    "legal": Scenario(
        key="legal",
        title="AI-native legal assistant",
        story=(
            "A start-up sells law firms contract review: clause extraction and questions "
            "answered from each firm's own private documents, long inputs, tight latency."
        ),
        workload=costs.Workload(
            requests_per_day=40_000,
            tokens_in=8_000,
            tokens_out=500,
            latency_target_s=5.0,
            traffic="business_hours",
        ),
        demand="stable",
        ml_engineers=2,
        sensitive_data=True,
        app_on_cloud=("web app", "auth", "billing", "document storage"),
        min_answer_correctness=0.95,  # a wrong clause in a contract review costs the client
        rag=True,
        chunks_embedded_per_day=200_000,
        article_choice="hybrid: AI infrastructure for inference, cloud for the app",
    ),
    "web3": Scenario(
        key="web3",
        title="Web3 analytics with AI agents",
        story=(
            "A crypto-native team indexes wallets, DeFi positions and governance votes, and "
            "lets users question that data through agents; traffic jumps with market events."
        ),
        workload=costs.Workload(
            requests_per_day=200_000,
            tokens_in=3_000,
            tokens_out=300,
            latency_target_s=8.0,
            traffic="spiky",
        ),
        demand="growing",
        ml_engineers=2,
        sensitive_data=False,
        app_on_cloud=("chain indexers", "API", "auth", "storage"),
        min_answer_correctness=0.9,  # users act on the numbers an agent reports
        rag=True,
        chunks_embedded_per_day=1_000_000,
        article_choice="cloud for indexing, APIs and storage; AI infrastructure for inference",
    ),
}


def scenario(key: str) -> Scenario:
    """One of the article's three scenarios by key ('saas', 'legal', 'web3')."""
    if key not in SCENARIOS:
        raise DecisionError(f"Unknown scenario {key!r}; choose one of: {', '.join(SCENARIOS)}.")
    return SCENARIOS[key]


# ------------------------------------------------------------------------ the inputs


def _missing(name: str, unit: str, hint: str) -> Figure:
    return Figure(None, unit, "missing", hint, name=name)


def gather_inputs() -> dict[str, Input]:
    """The measurements the capstone uses, each labelled with its origin and file: lesson 04's
    CPU decode and prefill and its GPU run (the student's, else the recorded H200 run),
    lessons 02, 03 and 06, and the published anchor of the H100 estimate.

    Each is a field of a typed result (``infralab.core.results``): the student's saved run if it
    is valid, else the kit's recorded run, never a key guessed from a free-form file.
    """
    from infralab.core import results

    gen, emb, srv = (costs.measured_throughput("generation"), costs.measured_throughput("embedding"),
                     costs.measured_duration_s("serving"))  # fmt: skip
    inputs = {
        "generation": gen.named("CPU decode speed (lesson 04)")
        if gen
        else _missing("CPU decode speed (lesson 04)", "tokens/s", "run lesson 04 to measure it"),
        "embedding": emb.named("CPU embedding throughput (lesson 03)")
        if emb
        else _missing("CPU embedding throughput (lesson 03)", "sentences/s", "run lesson 03"),
        "serving": srv.named("API time per request on CPU (lesson 02)")
        if srv
        else _missing(
            "API time per request on CPU (lesson 02)",
            "s",
            "run lesson 02 to measure it; the app tier is then not priced",
        ),
    }
    from infralab.economics.costs.llm import GPU_ANCHOR, gpu_name, measured_speeds

    cpu, gpu, _ = measured_speeds()
    if cpu.prefill:
        inputs["prefill"] = cpu.prefill.named("CPU prefill speed (lesson 04)")
    if gpu:
        name = gpu_name(gpu.device)
        inputs["gpu_generation"] = gpu.decode.named(f"{name} decode speed, batch 1 (lesson 04)")
        if gpu.prefill:
            inputs["gpu_prefill"] = gpu.prefill.named(f"{name} prefill speed (lesson 04)")
    inputs["gpu_anchor"] = GPU_ANCHOR
    try:
        fig = results.load("serving").figure("cpu_vcpus")
        inputs["serving_vcpus"] = fig.named("CPU the request was measured with (lesson 02)")
    except (FileNotFoundError, results.ResultError, OSError):
        pass
    inputs["small_model_quality"] = small_model_quality()
    try:
        fig = results.load("rag").figure("retrieval_ms")
        inputs["rag"] = fig.named("retrieval latency (lesson 06)")
    except (FileNotFoundError, results.ResultError, OSError):
        inputs["rag"] = _missing(
            "retrieval latency (lesson 06)", "ms", "run lesson 06 to measure it"
        )
    return inputs


def small_model_quality() -> Input:
    """The 135M model's answer correctness: the share of the course's questions it answered
    with every key fact, from the kit's recorded quality run (lesson 09 shows it)."""
    from infralab.engines.rag.answer_quality import recorded

    name = "135M model's answer correctness (lesson 09)"
    try:
        part, label = recorded("quality")
        path = part["paths"]["local_llm"]
        value, n = float(path["correct"]), int(path["questions"])
    except (FileNotFoundError, KeyError, TypeError, ValueError):
        return _missing(name, "share", "run `python -m infralab bench quality --record`")
    return Figure(
        value,
        "share",
        "recorded",
        "datasets/benchmarks/quality.json",
        f"{label}; {n} questions answered by the local model, each graded on every key fact",
        name=name,
    )
