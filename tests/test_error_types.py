"""The kit raises its own error types, each with a hint (what to do next), not bare builtins.

Two halves: a static walk of infralab/ that refuses ``raise ValueError/RuntimeError/
TypeError/KeyError(...)`` outside a short allow-list (each entry says why it stays builtin),
and a behavioural test that feeds bad input to public functions and checks that what comes
back is an :class:`InfralabError` whose hint Jupyter and the CLI actually show.
"""

from __future__ import annotations

import ast
import importlib
import pickle
from pathlib import Path

import numpy as np
import pytest

from infralab.core.errors import InfralabError, with_hint

PACKAGE = Path(__file__).resolve().parents[1] / "infralab"
BUILTINS = {"ValueError", "RuntimeError", "TypeError", "KeyError"}

# Whole files or folders (relative to the repository root) whose builtin raises stay for now.
ALLOWED_FILES = {
    # hidden reference solutions mimic student code, which raises builtins
    "infralab/tooling/checks/references/": "reference solutions written as a student would",
    # the kernel half of the grader's RPC imports nothing from infralab (exec'd in the kernel)
    "infralab/tooling/grading/kernel_rpc.py": "runs in the student's kernel without the kit",
}

# Single functions (file, enclosing function) whose builtin raise is part of a protocol.
ALLOWED_FUNCTIONS = {
    (
        "infralab/tooling/submission_run.py",
        "StudentNamespace.__getitem__",
    ): "mapping protocol: .get() needs KeyError",
    ("infralab/tooling/grading/remote.py", "Remote.__len__"): "len() protocol raises TypeError",
    (
        "infralab/tooling/grading/remote.py",
        "_encode",
    ): "a check's own bug (its argument cannot travel)",
    (
        "infralab/engines/rag/cloud_app.py",
        "AskRequest._text",
    ): "pydantic validators raise ValueError",
    (
        "infralab/engines/rag/cloud_app.py",
        "AskRequest._bounded",
    ): "pydantic validators raise ValueError",
    (
        "infralab/engines/serving/chat_requests.py",
        "ChatMessage._characters",
    ): "pydantic validators raise ValueError",
    (
        "infralab/engines/serving/chat_requests.py",
        "ChatCompletionRequest._stops",
    ): "pydantic validators raise ValueError",
    (
        "infralab/engines/serving/chat_requests.py",
        "ChatCompletionRequest._has_content",
    ): "pydantic validators raise ValueError",
    (
        "infralab/engines/serving/simclock.py",
        "drive_batcher.model",
    ): "a simulated model call failing",
}


def _builtin_raises(path: Path) -> list[tuple[int, str, str]]:
    """(line, exception name, enclosing function's dotted name) of each builtin raise."""
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, (*scope, child.name))
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                if isinstance(exc, ast.Name) and exc.id in BUILTINS:
                    found.append((child.lineno, exc.id, ".".join(scope)))
            visit(child, scope)

    visit(ast.parse(path.read_text(encoding="utf-8")), ())
    return found


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def test_no_bare_builtin_raises_outside_the_allow_list() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = _rel(path)
        if any(rel == f or (f.endswith("/") and rel.startswith(f)) for f in ALLOWED_FILES):
            continue
        for line, name, scope in _builtin_raises(path):
            if (rel, scope) not in ALLOWED_FUNCTIONS:
                offenders.append(f"{rel}:{line} raise {name} in {scope or '<module>'}")
    assert not offenders, (
        "raise the package's own error type (an InfralabError subclass that keeps the builtin "
        "as a base) with a hint:\n" + "\n".join(offenders)
    )


def test_allow_list_entries_still_exist() -> None:
    """An entry whose file or function no longer raises a builtin is stale: drop it."""
    for entry in ALLOWED_FILES:
        assert (PACKAGE.parent / entry).exists(), entry
    for rel, scope in ALLOWED_FUNCTIONS:
        scopes = {s for _, _, s in _builtin_raises(PACKAGE.parent / rel)}
        assert scope in scopes, f"{rel}: {scope} raises no builtin any more"


def _hinted_raises() -> list[tuple[str, dict[str, object], str, int]]:
    """(module, its names, class expression, line) of every ``raise X(..., hint=...)``.

    The names are the module's globals plus what its functions import locally (a raise in
    a function may name a class imported there)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        raises = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Raise)
            and isinstance(node.exc, ast.Call)
            and any(k.arg == "hint" for k in node.exc.keywords)
        ]
        if not raises:
            continue
        names = dict(vars(importlib.import_module(module)))
        wanted = {n.id for r in raises for n in ast.walk(r.exc.func) if isinstance(n, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if (alias.asname or alias.name) in wanted - names.keys():
                        source = importlib.import_module(node.module)
                        names[alias.asname or alias.name] = getattr(source, alias.name)
        out += [(module, names, ast.unparse(r.exc.func), r.lineno) for r in raises]
    return out


def test_every_raise_with_a_hint_names_a_kit_error_that_shows_it() -> None:
    """``hint=`` on a class that does not take it would itself crash at the raise."""
    raises = _hinted_raises()
    assert len(raises) > 50  # the walk found the package's raises (not an empty pass)
    for module, names, expr, line in raises:
        cls = eval(expr, names)  # a class name, or module.Class, as the raise wrote it
        assert isinstance(cls, type) and issubclass(cls, InfralabError), f"{module}:{line} {expr}"
        err = cls("message", hint="do this next")
        assert err.hint == "do this next"
        assert "Hint: do this next" in "\n".join(err._render_traceback_())


def test_the_hint_keyword_keeps_each_builtin_base_working() -> None:
    from infralab.economics.costs.pricing import CostError, CostTypeError
    from infralab.engines.rag.vector_store import TenantScopeError

    err = CostError("bad", hint="pass a number")
    assert isinstance(err, ValueError) and err.args == ("bad",) and err.hint == "pass a number"
    assert CostError("bad").hint == CostError.hint  # no keyword: the class's own hint
    assert isinstance(CostTypeError("x", hint="y"), TypeError)
    copy = pickle.loads(pickle.dumps(err))  # errors cross processes (grader, servers)
    assert (str(copy), copy.hint) == ("bad", "pass a number")
    denied = TenantScopeError(13, "denied", "x", hint="your own tenant")  # OSError's arguments
    assert (denied.errno, denied.filename, denied.hint) == (13, "x", "your own tenant")


def _empty_chart() -> None:
    from infralab.presentation.charts.serving import trace_rate

    trace_rate(np.array([]))


def _session_with_no_threads() -> None:
    from infralab.core.runtime import session_options

    session_options(threads=0)


def _batcher_of_nothing() -> None:
    from infralab.engines.serving.batching import MicroBatcher

    MicroBatcher(lambda texts: texts, max_batch_size=0)


# Bad input to public functions -> (the builtin it always was, the message it must contain).
BAD_INPUT = {
    "trace kind": (
        lambda: importlib.import_module("infralab.economics.traces").make_trace(
            "weekly", mean_rps=1
        ),
        ValueError,
        "kind must be one of",
    ),
    "serverless text": (
        lambda: importlib.import_module("infralab.economics.costs.serverless").vm_capacity_requests(
            "9"
        ),
        TypeError,
        "throughput_rps must be a number",
    ),
    "chunk size": (
        lambda: importlib.import_module("infralab.engines.rag.chunking").split_words(
            "a b c", size=0
        ),
        ValueError,
        "size must be a positive whole number",
    ),
    "recall without gold": (
        lambda: importlib.import_module("infralab.engines.rag.evaluate").recall_at_k(["d1"], [], 1),
        ValueError,
        "without gold documents",
    ),
    "model width": (
        lambda: importlib.import_module("infralab.engines.models.synthetic").build(0),
        ValueError,
        "hidden must be a whole number",
    ),
    "unknown question": (
        lambda: importlib.import_module("infralab.tooling.checks.lesson01").ask("no_such_question"),
        KeyError,
        "No question 'no_such_question'",
    ),
    "quantile as percent": (
        lambda: importlib.import_module("infralab.engines.serving.observe").quantile_from_buckets(
            np.array([0.1, np.inf]), np.array([1.0, 2.0]), 95
        ),
        ValueError,
        "q is a share",
    ),
    "session threads": (_session_with_no_threads, ValueError, "threads must be a positive"),
    "batch size": (_batcher_of_nothing, ValueError, "max_batch_size must be"),
    "empty trace chart": (_empty_chart, ValueError, "the trace has no requests"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_raises_a_kit_error_with_a_hint(case: str) -> None:
    call, builtin, message = BAD_INPUT[case]
    with pytest.raises(builtin) as info:
        call()
    err = info.value
    assert isinstance(err, InfralabError), type(err).__mro__
    assert message in str(err)
    assert err.hint.strip() and err.hint not in str(err)  # says something the message does not
    shown = "\n".join(err._render_traceback_())  # what Jupyter prints instead of a traceback
    assert message in shown and f"Hint: {err.hint}" in shown
    assert with_hint(err).endswith(f"Hint: {err.hint}")  # what the CLI prints
