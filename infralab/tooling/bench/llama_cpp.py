"""llama.cpp as a peer for ``bench generate``: the same GGUF, threads and prompt, in one run.

Why a child process: llama-cpp-python compiles llama.cpp from source at install time (no
wheel on PyPI), so it is not a kit dependency; a benchmark names any Python that has it
(``--llama-cpp-python``) and drives it over a pipe. The child stays up between rounds, so
the kit and llama.cpp can take turns and a neighbour's burst of load hits both alike.

The rate is measured as the kit's own is (``decode_run``): the median interval between
consecutive new tokens of a greedy decode that ignores end-of-sequence.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from infralab.core.errors import InfralabError
from infralab.engines.models.model_errors import ModelError

# Runs inside the peer's Python. Reads one JSON request per line; answers one JSON line.
_CHILD = r"""
import json, sys, time
import llama_cpp
from llama_cpp import Llama
path, threads = sys.argv[1], int(sys.argv[2])
llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=2048,
            n_batch=512, verbose=False, seed=0)
print(json.dumps({"ready": True, "version": llama_cpp.__version__,
                  "system_info": llama_cpp.llama_print_system_info().decode(errors="replace")}),
      flush=True)
for line in sys.stdin:
    req = json.loads(line)
    times = []
    llm.reset()
    for _ in llm.generate(req["prompt"], temp=0.0, top_k=1, reset=True):
        times.append(time.perf_counter())
        if len(times) > req["tokens"]:
            break
    print(json.dumps({"times": times}), flush=True)
"""


class LlamaCppUnavailable(InfralabError, RuntimeError):
    """The named Python cannot run llama.cpp; the message says why and what to do."""


class LlamaCppPeer:
    """One llama.cpp process on ``gguf`` with ``threads`` threads, kept up for many rounds."""

    def __init__(self, python: str | Path, gguf: str | Path, threads: int) -> None:
        if not isinstance(threads, int) or threads < 1:
            raise ModelError(
                f"threads must be a whole number >= 1, not {threads!r}",
                hint="Give llama.cpp as many threads as physical cores (infralab.core.runtime.physical_cores()).",
            )
        self.python, self.threads = str(python), threads
        try:
            self._proc = subprocess.Popen(
                [self.python, "-c", _CHILD, str(gguf), str(threads)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            raise LlamaCppUnavailable(f"cannot start {self.python}: {exc}") from None
        hello = self._read()
        self.version: str = hello["version"]
        self.system_info: str = hello["system_info"].strip()

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            self.close()
            last = (err.strip().splitlines() or ["it exited without a word"])[-1]
            raise LlamaCppUnavailable(
                f"llama.cpp did not run under {self.python}: {last}. Install it there with "
                "`pip install llama-cpp-python` (it compiles llama.cpp; a few minutes)."
            )
        return json.loads(line)

    def decode(self, prompt_ids: list[int], tokens: int) -> dict[str, float]:
        """Greedy decode of ``tokens`` new tokens after ``prompt_ids``: median and mean rates."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"prompt": list(prompt_ids), "tokens": tokens}) + "\n")
        self._proc.stdin.flush()
        times = self._read()["times"]
        steps = list(np.diff(times))
        return {
            "decode_tok_s": 1 / float(np.median(steps)),
            "decode_tok_s_mean": len(steps) / (times[-1] - times[0]),
        }

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def __enter__(self) -> LlamaCppPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_python() -> str | None:
    """This interpreter when it can import llama_cpp, else None (the comparison is skipped)."""
    import importlib.util

    return sys.executable if importlib.util.find_spec("llama_cpp") is not None else None
