"""Command line: ``python -m infralab doctor | fetch | build-models | bench | serve | build-labs | release | slides | speaker-notes``.

Each command lives in the module of its concern; this file only dispatches, so a missing or
broken engine cannot stop the doctor from running.
"""

from __future__ import annotations

import argparse
import importlib
import sys


def _doctor(args: argparse.Namespace) -> int:
    from infralab.tooling import doctor

    report = doctor.doctor(probe_providers=not args.quick)
    print(doctor.format_report(report))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from infralab.core import assets
    from infralab.engines.models import manifest

    keys = args.assets or list(assets.ASSETS)
    try:
        for key in keys:
            paths = assets.fetch(key, full_verify=args.verify)
            for name, path in paths.items():
                print(f"  ok  {key}: {name} -> {path}")
        # Built models derive from these files: check them too (every byte with --verify)
        # and rebuild any that is damaged or has no manifest.
        for row in manifest.repair_built(manifest.models_for_assets(keys), full=args.verify):
            mark = "ok" if row["state"] == "ok" else row["state"]
            print(f"  {mark}  built {row['model']} {row['variant']}: {row['path']}", end="")
            print("" if row["state"] == "ok" else f" ({row['reason']})")
    except (assets.AssetError, manifest.ModelIntegrityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _build_models(args: argparse.Namespace) -> int:
    from infralab.core.assets import AssetError
    from infralab.engines.models import manifest

    # The built models and their modules: one list, manifest.BUILT_MODELS.
    names = args.models or list(manifest.BUILT_MODELS)
    for name in names:
        module = importlib.import_module(manifest.BUILT_MODELS[name][0])
        # What was wrong before (damaged, stale) is reported; build_all keeps what verifies.
        before = {row["variant"]: row for row in manifest.check_built([name])}
        try:
            built = module.build_all(quiet=args.quiet)
        except (AssetError, manifest.ModelIntegrityError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for variant, path in built.items():
            row = before.get(variant)
            if row and row["state"] in ("damaged", "stale"):
                print(f"  rebuilt  {name} {variant}: {path} (was {row['state']}: {row['reason']})")
            else:
                print(f"  ok  {name} {variant}: {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(f"infralab.tooling.bench.{args.target.replace('-', '_')}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("infralab.tooling.bench."):
            print(f"error: no benchmark called {args.target!r}", file=sys.stderr)
            return 2
        raise
    return int(module.main(args.rest) or 0)


def _serve(args: argparse.Namespace) -> int:
    from infralab.engines.serving import cli

    return int(cli.main([args.app, *args.rest]) or 0)


def _build_labs(args: argparse.Namespace) -> int:
    from infralab.core.errors import with_hint
    from infralab.tooling import labs

    try:
        changed = labs.build_all(check=args.check)
    except labs.InstructorOnlyError as exc:
        print(f"error: {with_hint(exc)}", file=sys.stderr)
        return 2
    for path in changed:
        print(("out of step: " if args.check else "wrote ") + str(path))
    return 1 if (args.check and changed) else 0


def _release(args: argparse.Namespace) -> int:
    from infralab.tooling import release

    return release.run(args)


def _report(args: argparse.Namespace) -> int:
    from infralab.tooling import notebooks

    df = notebooks.report(args.paths or None, out=args.out)
    print(df.to_string(index=False))
    print(f"written: {args.out} and {notebooks.metadata_path(args.out)} (machine, date, commit)")
    return 0


def _preflight(args: argparse.Namespace) -> int:
    from infralab.tooling import preflight

    return preflight.main(kernel=not args.no_kernel, max_price_age_days=args.max_price_age_days)


def _slides(args: argparse.Namespace) -> int:
    from infralab.tooling import slides

    for path in slides.export_all(args.out):
        print(f"wrote {path}")
    return 0


def _speaker_notes(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infralab.tooling import notebooks, slides

    paths = [Path(p) for p in args.paths] or slides.lessons()
    changed = notebooks.set_notes_visible(paths, visible=args.action == "show")
    for path in changed:
        print(f"{args.action}: {path}")
    if args.action == "show" and changed:
        print(
            "Notes are visible as cells (RISE shows them in its speaker view, key S). Run "
            "`python -m infralab speaker-notes hide` (or build-labs) before committing."
        )
    return 0


def _share(args: argparse.Namespace) -> int:
    import os

    from infralab.tooling.classroom import client

    url = args.url or os.environ.get("INFRALAB_CLASS_URL")
    token = args.token or os.environ.get("INFRALAB_CLASS_TOKEN")
    if not url or not token:
        print("error: give --url and --token (or INFRALAB_CLASS_URL / INFRALAB_CLASS_TOKEN)")
        return 2
    try:
        answer = client.share(url, token, args.nickname)
    except client.ShareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"shared with {answer['class']}: {answer['received']} records, {answer['stored']} new")
    return 0


def _collector(args: argparse.Namespace) -> int:
    from infralab.tooling.classroom import service, store

    try:
        if args.create_class:
            info = store.Store(args.db).create_class(args.create_class)
            print(f"class {info.name!r} (id {info.id}); join token (shown once): {info.token}")
            return 0
        service.serve(args.db, args.port, args.host, args.prefix)
    except (store.StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _grade(args: argparse.Namespace) -> int:
    from infralab.tooling import grade

    return grade.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infralab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    # The order of these calls is the order of the commands in --help.
    _add_machine_commands(sub)
    _add_course_commands(sub)
    _add_class_commands(sub)
    return parser


def _add_machine_commands(sub: argparse._SubParsersAction) -> None:
    """doctor, fetch, build-models, bench, serve: what runs on the student's machine."""
    p = sub.add_parser("doctor", help="what this machine has and what the kit can use")
    p.add_argument("--quick", action="store_true", help="skip creating a test session per provider")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("fetch", help="download and verify the pinned model files")
    p.add_argument("assets", nargs="*", help="minilm, smollm2 (default: both)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="re-hash every file, built models too, even if stamped; rebuild damaged models",
    )
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


def _add_course_commands(sub: argparse._SubParsersAction) -> None:
    """build-labs, release, slides, speaker-notes, preflight, report-notebooks: course upkeep."""
    p = sub.add_parser("build-labs", help="student labs and notebook headers from one source")
    p.add_argument("--check", action="store_true", help="fail if anything is out of step")
    p.set_defaults(func=_build_labs)

    from infralab.tooling import release

    p = sub.add_parser(
        "release",
        help="build the student release: no solutions, answer keys, references or tests",
        description=release.__doc__.split("\n\n")[0] + "\n\n" + release.__doc__.split("\n\n")[1],
        epilog=release.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    release.add_arguments(p)
    p.set_defaults(func=_release)

    p = sub.add_parser("slides", help="export every lesson as HTML slides (reveal.js)")
    p.add_argument("--out", default="artifacts/slides")
    p.set_defaults(func=_slides)

    p = sub.add_parser(
        "speaker-notes",
        help="instructor view: show the lessons' speaker notes as cells, or hide them again",
    )
    p.add_argument("action", choices=["show", "hide"])
    p.add_argument("paths", nargs="*", help="notebooks (default: every lesson)")
    p.set_defaults(func=_speaker_notes)

    p = sub.add_parser("preflight", help="is this room ready? first cell, memory, GPU, prices")
    p.add_argument("--no-kernel", action="store_true", help="do not time a Jupyter kernel start")
    p.add_argument("--max-price-age-days", type=int, default=180, help="warn past this age")
    p.set_defaults(func=_preflight)

    p = sub.add_parser("report-notebooks", help="wall time and peak RSS per notebook, to CSV")
    p.add_argument("paths", nargs="*")
    p.add_argument("--out", default="artifacts/notebook_report.csv")
    p.set_defaults(func=_report)


def _add_class_commands(sub: argparse._SubParsersAction) -> None:
    """share, collector, grade: the class's shared measurements and grading."""
    p = sub.add_parser("share", help="send your saved measurements to your class's collector")
    p.add_argument("--url", help="the collector (or env INFRALAB_CLASS_URL)")
    p.add_argument("--token", help="the class join token (or env INFRALAB_CLASS_TOKEN)")
    p.add_argument("--nickname", required=True, help="a name you choose; no real name needed")
    p.set_defaults(func=_share)

    p = sub.add_parser("collector", help="run the class collector (instructor)")
    p.add_argument(
        "--db", default="sqlite:///class_collector.db", help="sqlite:///... or postgresql://..."
    )
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--prefix", default=None, help="URL prefix (default: JUPYTERHUB_SERVICE_PREFIX or /)"
    )
    p.add_argument("--create-class", metavar="NAME", help="create a class, print its token, exit")
    p.set_defaults(func=_collector)

    p = sub.add_parser("grade", help="grade student lab notebooks: gradebook CSV and feedback")
    from infralab.tooling.grade import add_arguments

    add_arguments(p)
    p.set_defaults(func=_grade)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
