"""One-off: rewrite each recorded benchmark file so every figure is stored once (issue #26).

Before, a file held the bench's full output *and* a ``record`` block that repeated its
headline figures, machine, date and command. After, it holds ``record`` (the typed record,
the one copy of those) and ``detail`` (the rest of the bench's output, without the copies).
Run once from the repository root; it refuses to drop a copy whose value differs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

FOLDER = Path("datasets/benchmarks")
TYPED = ["embedding", "embedding_gpu_h200", "generation", "generation_gpu_h200",
         "generation_vs_llama_cpp", "rag", "serving"]  # fmt: skip
HEADER = ("name", "measured_at", "date", "machine", "command", "provider", "threads")


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=0, abs_tol=0)
    return a == b


def convert(name: str) -> dict[str, Any]:
    raw = json.loads((FOLDER / f"{name}.json").read_text())
    if set(raw) == {"record", "detail"}:
        raise SystemExit(f"{name}.json is already converted")
    record = raw["record"]
    detail = {k: v for k, v in raw.items() if k != "record"}
    # the header: the record's date, machine, command, provider and threads are the copy kept
    date = detail.pop("measured_at", None) or detail.pop("date", None)
    assert date == record["date"], (name, date)
    machine = detail.pop("machine")
    assert all(record["machine"].get(k) == v for k, v in machine.items()), name
    command = detail.pop("command", None) or (
        detail.pop("benchmark") if isinstance(detail.get("benchmark"), str) else None
    )
    if isinstance(detail.get("benchmark"), str):
        assert detail.pop("benchmark") in (record["command"], "generation"), name
    assert command == record["command"], (name, command)
    if "provider" in detail:
        assert detail.pop("provider") == record["provider"], name
    if "threads" in detail:
        assert detail.pop("threads") == record["threads"], name
    detail.pop("name", None)
    if "model" in detail:  # the model file the bench ran, beside the record's model name
        detail["model_file"] = detail.pop("model")
    # copies of headline figures under the bench's own names
    if "decode_tokens_per_s" in detail:
        assert same(detail.pop("decode_tokens_per_s"), record["decode_tokens_per_s"]), name
        assert detail.pop("decode_tokens_per_s_variant") == record["variant"], name
    data = detail.get("data")
    if isinstance(data, dict):
        if "best_engine" in data:
            assert data.pop("best_engine") == record["engine"], name
        for key in list(data):
            if key in record and not isinstance(data[key], (dict, list)):
                assert same(data.pop(key), record[key]), (name, key)
        if "mean_usage" in data:  # rag: mean tokens per question, the record's two fields
            usage = data.pop("mean_usage")
            for key, value in usage.items():
                assert same(value, record[key]), (name, key)
        if not data:
            del detail["data"]
    return {"record": record, "detail": detail}


def main() -> None:
    for name in TYPED:
        out = convert(name)
        path = FOLDER / f"{name}.json"
        indent = 1 if name.startswith("embedding") else 2
        path.write_text(json.dumps(out, indent=indent) + "\n")
        print(f"converted {path}")


if __name__ == "__main__":
    main()
