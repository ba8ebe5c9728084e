"""How many nodes a class needs on JupyterHub, and what they cost, from measured figures.

Memory per user is measured, not guessed: the peak RSS of the heaviest notebook in the
kit's own notebook report (``python -m infralab report-notebooks``, kernel plus the servers
it starts; students run one notebook at a time) plus the RSS of an idle single-user Jupyter
server, measured when the table is made (:func:`measure_server_mb`). Node prices come from
``datasets/pricing/cpu_vm.csv`` through :mod:`infralab.economics.costs.pricing` (source and date on
every row). CPU per user is a stated choice, not a measurement: the notebooks are built for
2 cores (the limit), and a guarantee of a fraction of a core assumes that most students
read while a few run a heavy cell.

Run ``python -m infralab.tooling.classroom.sizing 30 100 300`` to print the tables in deploy/README.md.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from infralab.core.errors import InfralabError
from infralab.core.paths import NOTEBOOK_REPORT

REPORT = NOTEBOOK_REPORT
SERVER = REPORT.with_name("server_rss.csv")
GIB = 1024.0


class SizingError(ValueError, InfralabError):
    """Input the sizing cannot use; the message says what to pass or run."""

    hint = "`python -m infralab report-notebooks --out deploy/measured/notebook_report.csv` measures what sizing reads."


@dataclass(frozen=True)
class UserSize:
    """What one student's server needs: memory (measured) and CPU (chosen), with origins."""

    peak_notebook_mb: float
    heaviest_notebook: str
    server_mb: float
    server_origin: str
    cpu_guarantee: float
    cpu_limit: float
    margin: float

    @property
    def guarantee_mb(self) -> float:
        """Memory reserved per user: the measured peak plus a safety margin."""
        return (self.peak_notebook_mb + self.server_mb) * (1 + self.margin)

    @property
    def limit_mb(self) -> float:
        """The hard limit: the guarantee rounded up to the next 256 MB."""
        return math.ceil(self.guarantee_mb / 256) * 256.0


def peak_notebook(report: Path | str = REPORT) -> tuple[float, str]:
    """(peak RSS in MB, notebook) of the heaviest notebook in a notebook report CSV."""
    path = Path(report)
    if not path.is_file():
        raise SizingError(
            f"no notebook report at {path}: run `python -m infralab report-notebooks "
            f"--out {path}` first"
        )
    df = pd.read_csv(path)
    if df.empty or "peak_rss_mb" not in df or "notebook" not in df:
        raise SizingError(f"{path} is not a report-notebooks CSV (needs notebook, peak_rss_mb)")
    errors = df["error"].astype(object).fillna("") if "error" in df else pd.Series("", df.index)
    ok = df[errors.astype(str).str.strip() == ""]
    if ok.empty:
        raise SizingError(f"every notebook in {path} failed; fix them and run the report again")
    row = ok.loc[ok["peak_rss_mb"].idxmax()]
    return float(row["peak_rss_mb"]), str(row["notebook"])


def measure_server_mb(timeout_s: float = 120.0) -> float:
    """RSS in MB of an idle Jupyter server with the kit's extensions, started and stopped here."""
    import psutil

    from infralab.engines.serving.launcher import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
           "--ip=127.0.0.1", "--ServerApp.token=sizing", "--allow-root"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{port}/api/status?token=sizing"
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise SizingError("the Jupyter server did not start; pass server_mb instead")
        httpx.get(f"http://127.0.0.1:{port}/lab?token=sizing", timeout=30)  # load the lab page
        return psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def user_size(
    *,
    report: Path | str = REPORT,
    server_mb: float | None = None,
    server_file: Path = SERVER,
    cpu_guarantee: float = 0.5,
    cpu_limit: float = 2.0,
    margin: float = 0.2,
) -> UserSize:
    """One student's server: measured memory (report + server) and the chosen CPU.

    ``server_mb`` None: the idle server's RSS recorded in ``server_file`` (written by
    ``--measure-server``), else measured now.
    """
    if not 0 < cpu_guarantee <= cpu_limit:
        raise SizingError("cpu_guarantee must be positive and at most cpu_limit")
    if margin < 0:
        raise SizingError("margin is a share (0.2 = 20 %), not negative")
    peak, notebook = peak_notebook(report)
    origin = "given"
    if server_mb is None and server_file.is_file():
        row = pd.read_csv(server_file).iloc[-1]
        server_mb, origin = float(row["rss_mb"]), f"measured {row['date']}, {server_file.name}"
    if server_mb is None:
        server_mb, origin = measure_server_mb(), "measured now"
    if server_mb <= 0:
        raise SizingError("server_mb must be positive")
    return UserSize(peak, notebook, server_mb, origin, cpu_guarantee, cpu_limit, margin)


def size_class(
    students: int,
    user: UserSize,
    *,
    reserve_gib: float = 1.0,
    reserve_vcpu: float = 0.25,
    hours: float = 3.0,
    pricing: str = "on_demand",
) -> pd.DataFrame:
    """Nodes and cost for ``students`` on every CPU VM in datasets/pricing, cheapest first.

    Each node keeps ``reserve_gib`` and ``reserve_vcpu`` for the system (kubelet, proxies);
    the rest is packed with users by their guarantees. ``hours``: the length of one class.
    """
    from infralab.economics.costs import pricing as prices

    if not isinstance(students, int) or students < 1:
        raise SizingError("students must be a positive whole number")
    if hours <= 0:
        raise SizingError("hours must be positive")
    rows = []
    for _, vm in prices.cpu_vm(pricing=pricing).iterrows():
        mem_users = math.floor((float(vm["memory_gib"]) - reserve_gib) * GIB / user.guarantee_mb)
        cpu_users = math.floor((float(vm["vcpu"]) - reserve_vcpu) / user.cpu_guarantee)
        per_node = min(mem_users, cpu_users)
        if per_node < 1:
            continue
        nodes = math.ceil(students / per_node)
        usd_hour = nodes * float(vm["usd_per_hour"])
        rows.append(
            {
                "students": students,
                "instance": f"{vm['provider']} {vm['instance']}",
                "vcpu": int(vm["vcpu"]),
                "memory_gib": float(vm["memory_gib"]),
                "users_per_node": per_node,
                "bound_by": "memory" if mem_users <= cpu_users else "cpu",
                "nodes": nodes,
                "usd_per_hour": round(usd_hour, 2),
                "usd_per_class": round(usd_hour * hours, 2),
                "usd_per_student_hour": round(usd_hour / students, 4),
                "price_as_of": vm["as_of"],
                "price_source": vm["source"],
            }
        )
    if not rows:
        raise SizingError("no VM in datasets/pricing/cpu_vm.csv fits one user's guarantee")
    return pd.DataFrame(rows).sort_values(["usd_per_hour", "nodes"]).reset_index(drop=True)


def gpu_profile(students: int, gpu: str = "T4", hours: float = 3.0) -> dict[str, object]:
    """One GPU per student (a Kubernetes GPU is not shared by default) on the cheapest row."""
    from infralab.economics.costs import pricing as prices

    row = prices.gpu_hourly(gpu, "on_demand").iloc[0]
    per_gpu = float(row["usd_per_hour"]) / float(row["gpu_count"])
    return {
        "students": students,
        "gpu": gpu,
        "instance": f"{row['provider']} {row['instance']}",
        "usd_per_student_hour": round(per_gpu, 3),
        "usd_per_class": round(per_gpu * students * hours, 2),
        "price_as_of": row["as_of"],
        "price_source": row["source"],
    }


def markdown(df: pd.DataFrame) -> str:
    """A DataFrame as a markdown table (no extra dependency for the README's tables)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row) + " |"
            for row in df.itertuples(index=False)]  # fmt: skip
    return "\n".join([head, rule, *body])


def tables(user: UserSize, students: list[int], hours: float = 3.0, top: int = 3) -> str:
    """The README's sizing section: per-user figures, the cheapest node types, the GPU profile."""
    lines = [
        f"Per user: heaviest notebook {user.heaviest_notebook} peaks at "
        f"{user.peak_notebook_mb:.0f} MB (deploy/measured/{REPORT.name}); idle single-user "
        f"server {user.server_mb:.0f} MB ({user.server_origin}); +{user.margin:.0%} margin: "
        f"guarantee {user.guarantee_mb:.0f} MB, limit {user.limit_mb:.0f} MB. CPU guarantee "
        f"{user.cpu_guarantee:g}, limit {user.cpu_limit:g} (chosen). Class length {hours:g} h.",
        "",
    ]
    cols = ["students", "instance", "users_per_node", "bound_by", "nodes", "usd_per_hour",
            "usd_per_class", "usd_per_student_hour", "price_as_of"]  # fmt: skip
    for n in students:
        lines += [markdown(size_class(n, user, hours=hours)[cols].head(top)), ""]
    gpu = pd.DataFrame([gpu_profile(n, hours=hours) for n in students])
    lines += ["GPU profile (one T4 per student):", ""]
    lines += [markdown(gpu.drop(columns=["price_source"])), ""]
    lines += [f"Prices: datasets/pricing/cpu_vm.csv and gpu_instances.csv (GPU row: "
              f"{gpu['price_source'].iloc[0]})."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the sizing tables (markdown) for the class sizes given on the command line."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m infralab.tooling.classroom.sizing")
    parser.add_argument("students", nargs="*", type=int, default=[30, 100, 300])
    parser.add_argument("--server-mb", type=float, default=None)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument(
        "--measure-server", action="store_true", help=f"measure and record in {SERVER.name}"
    )
    parser.add_argument("--top", type=int, default=3, help="cheapest node types shown per size")
    args = parser.parse_args(argv)
    if args.measure_server:
        import datetime as dt

        rss = measure_server_mb()
        date = dt.date.today().isoformat()
        row = pd.DataFrame([{"rss_mb": round(rss), "date": date, "command": "jupyter lab"}])
        row.to_csv(SERVER, index=False)
        print(f"idle Jupyter server: {rss:.0f} MB -> {SERVER}")
    user = user_size(server_mb=args.server_mb)
    print(tables(user, args.students, hours=args.hours, top=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
