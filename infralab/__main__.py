"""Command line: ``python -m infralab doctor | fetch | build-models | bench | serve | build-labs | slides``.

Each command lives in the module of its concern; this file only dispatches, so a missing or
broken engine cannot stop the doctor from running.
"""

from __future__ import annotations

import argparse
import importlib
import sys


def _doctor(args: argparse.Namespace) -> int:
    from infralab import env

    report = env.doctor(probe_providers=not args.quick)
    print(env.format_report(report))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from infralab import assets

    keys = args.assets or list(assets.ASSETS)
    try:
        for key in keys:
            paths = assets.fetch(key, full_verify=args.verify)
            for name, path in paths.items():
                print(f"  ok  {key}: {name} -> {path}")
    except assets.AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# Model builders: each model module exposes build_all(quiet) -> dict of built files.
MODEL_BUILDERS = {
    "encoder": "infralab.models.encoder",
    "decoder": "infralab.models.decoder",
}


def _build_models(args: argparse.Namespace) -> int:
    names = args.models or list(MODEL_BUILDERS)
    for name in names:
        module = importlib.import_module(MODEL_BUILDERS[name])
        built = module.build_all(quiet=args.quiet)
        for variant, path in built.items():
            print(f"  ok  {name} {variant}: {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(f"infralab.bench.{args.target.replace('-', '_')}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("infralab.bench."):
            print(f"error: no benchmark called {args.target!r}", file=sys.stderr)
            return 2
        raise
    return int(module.main(args.rest) or 0)


def _serve(args: argparse.Namespace) -> int:
    from infralab.serving import cli

    return int(cli.main([args.app, *args.rest]) or 0)


def _build_labs(args: argparse.Namespace) -> int:
    from infralab import labs

    changed = labs.build_all(check=args.check)
    for path in changed:
        print(("out of step: " if args.check else "wrote ") + str(path))
    return 1 if (args.check and changed) else 0


def _report(args: argparse.Namespace) -> int:
    from infralab import notebooks

    df = notebooks.report(args.paths or None, out=args.out)
    print(df.to_string(index=False))
    return 0


def _slides(args: argparse.Namespace) -> int:
    from infralab import slides

    for path in slides.export_all(args.out):
        print(f"wrote {path}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from infralab import grade

    return grade.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infralab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="what this machine has and what the kit can use")
    p.add_argument("--quick", action="store_true", help="skip creating a test session per provider")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("fetch", help="download and verify the pinned model files")
    p.add_argument("assets", nargs="*", help="minilm, smollm2 (default: both)")
    p.add_argument("--verify", action="store_true", help="re-hash files even if stamped")
    p.set_defaults(func=_fetch)

    p = sub.add_parser("build-models", help="build the ONNX models from the fetched files")
    p.add_argument("models", nargs="*", help="encoder, decoder (default: both)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_build_models)

    p = sub.add_parser("bench", help="run a benchmark: embed, serve, generate, ...")
    p.add_argument("target")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_bench)

    p = sub.add_parser("serve", help="run a service: embeddings, chat, rag, ...")
    p.add_argument("app")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_serve)

    p = sub.add_parser("build-labs", help="student labs and notebook headers from one source")
    p.add_argument("--check", action="store_true", help="fail if anything is out of step")
    p.set_defaults(func=_build_labs)

    p = sub.add_parser("slides", help="export every lesson as HTML slides (reveal.js)")
    p.add_argument("--out", default="artifacts/slides")
    p.set_defaults(func=_slides)

    p = sub.add_parser("report-notebooks", help="wall time and peak RSS per notebook, to CSV")
    p.add_argument("paths", nargs="*")
    p.add_argument("--out", default="artifacts/notebook_report.csv")
    p.set_defaults(func=_report)

    p = sub.add_parser("grade", help="grade student lab notebooks: gradebook CSV and feedback")
    from infralab.grade import add_arguments

    add_arguments(p)
    p.set_defaults(func=_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
