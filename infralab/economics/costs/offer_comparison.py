"""The lesson 05 comparison for all four measured workloads: requests (lesson 02), embeddings
(lesson 03), tokens (lesson 04) and RAG questions (lesson 06).

Each way to run a workload is an :class:`Offer`: paid per unit (a function, an API) or per
hour for an always-on machine whose capacity comes from a measurement. Running your own
machines also costs people's time, an explicit input (:class:`PeopleCost`, zero by default
and said so); break-evens move with it. Offers carry the model they run and its quality, and
:func:`quality_note` says when a comparison sets different products side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from infralab.core.errors import InfralabError
from infralab.core.results import Figure
from infralab.economics.costs import billing, unit
from infralab.economics.costs.constants import HOURS_PER_MONTH, SECONDS_PER_MONTH

WorkloadKind = Literal["requests", "embeddings", "tokens", "rag questions"]
WORKLOADS: dict[str, str] = {
    "requests": "lesson 02: requests to the embeddings API",
    "embeddings": "lesson 03: sentences embedded",
    "tokens": "lesson 04: tokens generated",
    "rag questions": "lesson 06: questions answered with retrieval",
}


class WorkloadError(ValueError, InfralabError):
    """Bad input to the workload comparison; the message says what is allowed."""

    hint = (
        "infralab.economics.costs.offer_comparison lists the workloads and the fields each needs."
    )


@dataclass(frozen=True)
class PeopleCost:
    """Engineer time to run your own machines (patching, on-call, scaling), per month."""

    hours_per_month: float = 0.0
    usd_per_hour: float = 0.0

    def __post_init__(self) -> None:
        for name in ("hours_per_month", "usd_per_hour"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                raise WorkloadError(f"{name} must be a number >= 0, not {v!r}")
            if math.isinf(v):
                raise WorkloadError(f"{name} must be finite")

    @property
    def monthly_usd(self) -> float:
        return self.hours_per_month * self.usd_per_hour

    def label(self) -> str:
        if self.monthly_usd == 0:
            return "people cost: 0 USD/month (the default: enter your own hours and rate)"
        return (
            f"people cost: {self.hours_per_month:g} h/month x {self.usd_per_hour:g} USD/h = "
            f"{self.monthly_usd:,.0f} USD/month (your input)"
        )


@dataclass(frozen=True)
class Offer:
    """One way to run a workload, priced per unit or per hour, with what it runs."""

    name: str
    billing: Literal["per_unit", "per_hour"]
    model: str
    quality: str
    inputs: tuple[Figure, ...]
    usd_per_unit: float = 0.0  # per_unit offers
    usd_per_hour: float = 0.0  # per_hour offers: one machine
    units_per_s: float = 0.0  # per_hour offers: one machine's measured capacity
    max_utilization: float = 1.0  # how busy you plan each machine to be at most
    self_run: bool = False  # people cost applies

    def monthly_usd(self, units_per_month: float, people: PeopleCost = PeopleCost()) -> float:
        """The month's bill for ``units_per_month`` (math.inf when no machine count can serve)."""
        if units_per_month < 0 or not math.isfinite(units_per_month):
            raise WorkloadError(
                f"units per month must be a finite number >= 0, not {units_per_month}"
            )
        extra = people.monthly_usd if self.self_run else 0.0
        if self.billing == "per_unit":
            return units_per_month * self.usd_per_unit + extra
        capacity = self.units_per_s * self.max_utilization * SECONDS_PER_MONTH
        if capacity <= 0:
            return math.inf
        machines = max(1, math.ceil(units_per_month / capacity - 1e-9))
        return machines * self.usd_per_hour * HOURS_PER_MONTH + extra

    def origins(self) -> str:
        return "; ".join(f.label() for f in self.inputs)


def _per_unit(c: unit.UnitCost, per: float, name: str | None = None) -> Offer:
    if c.usd is None:
        raise WorkloadError(f"{c.option} has no unit cost: {c.note}")
    return Offer(name or c.option, "per_unit", c.model, c.quality, c.inputs, c.usd / per)


@dataclass(frozen=True)
class _AlwaysOnVm:
    """The CPU VM every workload can run on, priced once: its name, hourly price and vCPUs."""

    name: str
    price: Figure
    usd_per_hour: float
    vcpu: float
    max_utilization: float

    @classmethod
    def priced(cls, vm: str, max_utilization: float) -> _AlwaysOnVm:
        """Look the VM up in the price data (one row, with its source and date)."""
        row = unit.vm_row(vm)
        vcpu = float(row["vcpu"])
        return cls(
            name=f"VM {row['provider']} {vm} ({int(vcpu)} vCPU), always on",
            price=unit._price(row["usd_per_hour"], "USD/h", row, vm),
            usd_per_hour=float(row["usd_per_hour"]),
            vcpu=vcpu,
            max_utilization=max_utilization,
        )

    def offer(self, rate: Figure, vcpus: Figure, model: str, quality: str) -> Offer:
        """The measured rate scaled from the vCPUs it ran on to the VM's, billed per hour."""
        return Offer(
            self.name,
            "per_hour",
            model,
            quality,
            (rate, vcpus, self.price),
            usd_per_hour=self.usd_per_hour,
            units_per_s=rate.value * self.vcpu / vcpus.value,
            max_utilization=self.max_utilization,
            self_run=True,
        )


def _gpu_offer(
    name: str, model: str, quality: str, rate: Figure, gpu: str, max_utilization: float
) -> Offer:
    """One always-on GPU billed per GPU-hour, serving at its measured rate."""
    grow = unit.gpu_row(gpu)
    return Offer(
        name.format(provider=grow["provider"], instance=grow["instance"]),
        "per_hour",
        model,
        quality,
        (rate, unit._price(grow["usd_per_gpu_hour"], "USD/GPU-h", grow, gpu)),
        usd_per_hour=float(grow["usd_per_gpu_hour"]),
        units_per_s=rate.value,
        max_utilization=max_utilization,
        self_run=True,
    )


def _request_offers(thread: unit.Thread, vm: _AlwaysOnVm) -> list[Offer]:
    """Lesson 02's API requests: serverless per request, or the measured rate on a VM."""
    s = thread.serving
    out = [
        _per_unit(c, 1e6)
        for c in unit.requests_costs(s)
        if c.option.startswith(("AWS Lambda", "Cloud Run"))
    ]
    rps, v = s.figure("throughput_rps"), s.figure("cpu_vcpus")
    return [*out, vm.offer(rps, v, s.model, "the same model")]


def _embedding_offers(thread: unit.Thread, vm: _AlwaysOnVm, vm_name: str, gpu: str) -> list[Offer]:
    """Lesson 03's sentences: Lambda per batch call, a VM, or a GPU, each at its measured rate."""
    e, g = thread.embedding, thread.embedding_gpu
    sps, v = e.figure("sentences_per_s"), e.figure("cpu_vcpus")
    q = unit.embedding_costs(e, g, utilization=1.0, vm=vm_name, gpu_name=gpu)
    mb = unit.lambda_memory_for(v.value)
    batch = float(e.batch_size)
    b = billing.lambda_function(1e6, batch / sps.value, mb)
    lam = Offer(
        f"AWS Lambda, {mb:,} MB, {batch:.0f} sentences per call",
        "per_unit",
        e.model,
        q[0].quality,
        (sps, v, unit.lambda_mb_per_vcpu(), *b.inputs),
        usd_per_unit=b.monthly_usd / 1e6 / batch,
    )
    name = f"GPU {gpu} ({{provider}} {{instance}}), always on"
    gpu_offer = _gpu_offer(
        name, g.model, q[1].quality, g.figure("sentences_per_s"), gpu, vm.max_utilization
    )
    return [lam, vm.offer(sps, v, e.model, q[0].quality), gpu_offer]


def _token_offers(thread: unit.Thread, vm: _AlwaysOnVm, vm_name: str, gpu: str) -> list[Offer]:
    """Lesson 04's generated tokens: Lambda or an API per token, a VM, or a GPU at batch 1."""
    gen, small = thread.generation, "small model (135M parameters)"
    out = [
        _per_unit(c, 1e6)
        for c in unit.token_costs(gen, utilization=1.0, vm=vm_name, gpu=thread.generation_gpu)
        if c.option.startswith(("AWS Lambda", "API"))
    ]
    tps, v = gen.figure("decode_tokens_per_s"), gen.figure("cpu_vcpus")
    out.append(vm.offer(tps, v, gen.model, small))
    gt = thread.generation_gpu.figure("decode_tokens_per_s")
    name = f"GPU {gpu} ({{provider}}), batch 1, always on"
    out.append(_gpu_offer(name, thread.generation_gpu.model, small, gt, gpu, vm.max_utilization))
    return out


def _rag_offers(thread: unit.Thread, vm: _AlwaysOnVm, vm_name: str) -> list[Offer]:
    """Lesson 06's questions: every stage on Lambda, Lambda retrieval + API answers, or a VM."""
    rag = thread.rag
    costs = unit.rag_costs(rag, utilization=1.0, vm=vm_name)
    lam = [c for c in costs if c.option.startswith("AWS Lambda")]
    api = [c for c in costs if c.option.startswith("API")]
    retrieval = [c for c in lam if c.stage != "generate"]
    out = [
        Offer(
            f"{lam[0].option}, every stage",
            "per_unit",
            f"{rag.embed_model} + {rag.generate_model}",
            f"hybrid recall@5 {rag.recall_at_5:.2f}; small answer model"
            if rag.recall_at_5
            else "small answer model",
            _unique(tuple(f for c in lam for f in c.inputs)),
            usd_per_unit=sum(c.usd or 0.0 for c in lam) / 1e3,
        )
    ]
    if api:
        out.append(
            Offer(
                f"{lam[0].option} retrieval + {api[0].option} answers",
                "per_unit",
                f"{rag.embed_model} + {api[0].model}",
                "a much larger answer model: answers differ in quality",
                _unique(tuple(f for c in (*retrieval, *api) for f in c.inputs)),
                usd_per_unit=sum(c.usd or 0.0 for c in (*retrieval, *api)) / 1e3,
            )
        )
    v = float(rag.machine.get("usable_cpus") or rag.machine.get("cpus") or 1)
    stage_ms = [rag.figure(n) for n in ("embed_query_ms", "search_ms", "generate_ms")
                if getattr(rag, n)]  # fmt: skip
    cpu_s = sum(f.value for f in stage_ms) / 1000 * v
    out.append(
        Offer(
            vm.name,
            "per_hour",
            f"{rag.embed_model} + {rag.generate_model}",
            "small answer model",
            (*stage_ms, vm.price),
            usd_per_hour=vm.usd_per_hour,
            units_per_s=vm.vcpu / cpu_s,
            max_utilization=vm.max_utilization,
            self_run=True,
        )
    )
    return out


def offers(
    kind: str,
    thread: unit.Thread,
    *,
    max_utilization: float = 0.7,
    vm: str = unit.DEFAULT_VM,
    gpu: str = unit.DEFAULT_GPU,
) -> list[Offer]:
    """The ways to run ``kind`` (one of :data:`WORKLOADS`) from the measured ``thread``."""
    if kind not in WORKLOADS:
        raise WorkloadError(f"workload must be one of {', '.join(WORKLOADS)}, not {kind!r}")
    if not 0 < max_utilization <= 1:
        raise WorkloadError(f"max_utilization is a share in (0, 1], not {max_utilization!r}")
    always_on = _AlwaysOnVm.priced(vm, max_utilization)
    if kind == "requests":
        return _request_offers(thread, always_on)
    if kind == "embeddings":
        return _embedding_offers(thread, always_on, vm, gpu)
    if kind == "tokens":
        return _token_offers(thread, always_on, vm, gpu)
    return _rag_offers(thread, always_on, vm)


def _unique(figs: tuple[Figure, ...]) -> tuple[Figure, ...]:
    seen: dict[tuple[str, str, float], Figure] = {}
    for f in figs:
        seen.setdefault((f.source, f.detail, f.value), f)
    return tuple(seen.values())


def quality_note(offers_: list[Offer]) -> str:
    """Empty when every offer runs the same model; otherwise says which products differ."""
    parts = "; ".join(f"{o.name}: {o.model} ({o.quality})" for o in offers_)
    if len({o.model for o in offers_}) > 1:
        return (
            "Not the same product: these options run different models, so a lower price may "
            f"buy worse (or better) answers. {parts}."
        )
    if len({o.quality for o in offers_}) > 1:
        return f"Same model, different measured quality (engine or precision differ): {parts}."
    return ""


def break_even(
    a: Offer,
    b: Offer,
    people: PeopleCost = PeopleCost(),
    *,
    low: float = 1.0,
    high: float = 1e13,
    points: int = 300,
) -> float | None:
    """The first monthly volume at which ``a`` and ``b`` cost the same, or None if they never do
    (the one search of :func:`infralab.economics.costs.breakeven.crossings`)."""
    from infralab.economics.costs.breakeven import crossings

    def diff(x: float) -> float:
        ca, cb = a.monthly_usd(x, people), b.monthly_usd(x, people)
        if math.isinf(ca) and math.isinf(cb):
            return 0.0
        return ca - cb

    found, _ = crossings(diff, low, high, points)
    return found[0] if found else None


def comparison(
    kind: str,
    thread: unit.Thread,
    units_per_month: float,
    people: PeopleCost = PeopleCost(),
    *,
    max_utilization: float = 0.7,
) -> tuple[list[dict[str, object]], list[str]]:
    """Rows (one per offer: monthly bill, per-unit cost, model, quality, origins) and notes
    (people cost, quality, break-evens between the cheapest per-unit and per-hour offers)."""
    opts = offers(kind, thread, max_utilization=max_utilization)
    rows: list[dict[str, object]] = []
    for o in opts:
        usd = o.monthly_usd(units_per_month, people)
        rows.append(
            {
                "option": o.name,
                "billing": o.billing.replace("_", " "),
                "monthly_usd": usd,
                "usd_per_unit": usd / units_per_month if units_per_month > 0 else None,
                "model": o.model,
                "quality": o.quality,
                "people_cost_included": o.self_run and people.monthly_usd > 0,
                "inputs (origin: file)": o.origins(),
            }
        )
    notes = [people.label()]
    q = quality_note(opts)
    if q:
        notes.append(q)
    per_unit = [o for o in opts if o.billing == "per_unit"]
    per_hour = [o for o in opts if o.billing == "per_hour"]
    for a in per_unit:
        for b in per_hour:
            x = break_even(a, b, people)
            if x is not None:
                where = f"break-even at {x:,.0f} {kind} per month"
            else:
                lo = a if a.monthly_usd(1.0, people) < b.monthly_usd(1.0, people) else b
                where = f"no break-even up to 10^13 {kind} a month: {lo.name} stays cheaper"
            notes.append(f"{a.name} vs {b.name}: {where}")
    return rows, notes
