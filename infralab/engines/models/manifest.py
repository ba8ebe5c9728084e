"""Manifests for built models: what went in, which builder made it, and what came out.

A built model is a cache entry derived from a fetched asset. Without a record of its own, a
file overwritten in place, truncated by a full disk or left by an older exporter is loaded
as if it were right, and a damaged int8 encoder still answers, only with wrong vectors. So
every build writes a manifest next to its outputs: the sha256 of the source files, the
builder's version, the options, and each output's size and sha256.

Loading checks the manifest cheaply: sizes always; the sha256 only when a file changed since
it was last hashed, using the same race-safe stamp as the fetched assets
(:func:`infralab.core.assets.stamp_vouches`). A check ends in one of four states:

- ``ok``: the outputs are what the manifest says.
- ``missing``: not built yet; the loader builds it.
- ``stale``: no manifest (an older kit built it), or built from other inputs, by another
  builder version or with other options; the loader rebuilds it, as after an upgrade.
- ``damaged``: the manifest matches but an output does not (or the manifest itself is
  unreadable). The loader refuses with one sentence naming the fix; ``python -m infralab
  fetch --verify`` and ``build-models`` rebuild it.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infralab.core.errors import InfralabError
from infralab.engines.models.model_errors import ModelError

MANIFEST_FORMAT = 1
FIX = "python -m infralab fetch --verify"
STATES = ("ok", "missing", "stale", "damaged")

# Model modules with built outputs, and the fetched asset each is built from: the one list
# (`python -m infralab build-models` builds these too). Each exposes VARIANTS,
# check(variant, full=...) -> Check, build(variant, force=..., repair=...),
# output_path(variant) and build_all(quiet) -> dict of built files.
BUILT_MODELS = {
    "encoder": ("infralab.engines.models.encoder", "minilm"),
    "decoder": ("infralab.engines.models.decoder", "smollm2"),
}


class ModelIntegrityError(RuntimeError, InfralabError):
    """A built model does not match its manifest; the message names the command that fixes it."""

    hint = "`python -m infralab fetch --verify` re-hashes everything and rebuilds what fails."


@dataclass(frozen=True)
class Check:
    """The outcome of checking one built model against its manifest."""

    state: str
    reason: str

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def identity(
    *, model: str, variant: str, builder: str, inputs: dict[str, str], options: dict[str, Any]
) -> dict[str, Any]:
    """What a build is made from: a manifest that differs in any of these is stale."""
    return {
        "model": model,
        "variant": variant,
        "builder": builder,
        "inputs": dict(inputs),
        "options": json.loads(json.dumps(options)),  # the form it takes after a JSON round trip
    }


def _tool_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in ("onnx", "onnxruntime", "onnxruntime-gpu", "numpy", "gguf"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write(path: Path, ident: dict[str, Any], outputs: Sequence[Path]) -> dict[str, Any]:
    """Hash ``outputs`` (files in ``path``'s folder) and write the manifest atomically."""
    from infralab.core import assets

    folder = path.parent
    entries: dict[str, dict[str, Any]] = {}
    for out in outputs:
        out = Path(out)
        if out.parent.resolve() != folder.resolve():
            raise ModelError(
                f"{out} is not in the manifest's folder {folder}",
                hint="Write each built file next to its manifest; the manifest names files, not paths.",
            )
        entries[out.name] = {"size": out.stat().st_size, "sha256": assets.sha256_file(out)}
    manifest = {
        "format": MANIFEST_FORMAT,
        **ident,
        "outputs": entries,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tools": _tool_versions(),
    }
    _write_json_atomic(path, manifest)
    assets.update_stamp(folder, {name: e["sha256"] for name, e in entries.items()})
    return manifest


def check(path: Path, ident: dict[str, Any], primary: Path, *, full: bool = False) -> Check:
    """Check the outputs named by the manifest at ``path`` (``primary`` is the model file).

    ``full`` re-hashes every output even when its stamp vouches for it (``fetch --verify``).
    """
    from infralab.core import assets

    if not primary.is_file():
        return Check("missing", "not built yet")
    if not path.is_file():
        return Check("stale", "it has no manifest (built by an older kit)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return Check("damaged", "its manifest is unreadable")
    if not isinstance(manifest, dict):
        return Check("damaged", "its manifest is unreadable")
    if manifest.get("format") != MANIFEST_FORMAT:
        return Check("stale", "its manifest is from another kit version")
    for key in ("model", "variant", "builder", "inputs", "options"):
        if manifest.get(key) != ident[key]:
            return Check("stale", f"it was built with other {key} than this kit uses")
    outputs = manifest.get("outputs")
    if (
        not isinstance(outputs, dict)
        or primary.name not in outputs
        or not all(
            isinstance(e, dict)
            and isinstance(e.get("size"), int)
            and isinstance(e.get("sha256"), str)
            for e in outputs.values()
        )
    ):
        return Check("damaged", "its manifest is unreadable")
    folder = path.parent
    stamp = assets.read_stamp(folder)
    hashed: dict[str, str] = {}
    for name, entry in outputs.items():
        file = folder / name
        if not file.is_file():
            return Check("damaged", f"{name} is missing")
        size = file.stat().st_size
        if size != entry["size"]:
            return Check(
                "damaged",
                f"{name} has {size:,} bytes where its manifest says {entry['size']:,}",
            )
        if not full and assets.stamp_vouches(stamp.get(name), file, entry["sha256"]):
            continue
        if assets.sha256_file(file) != entry["sha256"]:
            return Check("damaged", f"the bytes of {name} differ from its manifest's sha256")
        hashed[name] = entry["sha256"]
    if hashed:
        assets.update_stamp(folder, hashed)
    return Check("ok", "matches its manifest")


def refusal(what: str, path: Path, result: Check) -> ModelIntegrityError:
    """The one-sentence error a loader raises for a damaged model."""
    return ModelIntegrityError(
        f"The built {what} at {path} is damaged ({result.reason}); run `{FIX}` "
        "(or `python -m infralab build-models`) to rebuild it."
    )


def _module(name: str) -> Any:
    return importlib.import_module(BUILT_MODELS[name][0])


def check_built(models: Iterable[str] | None = None, *, full: bool = False) -> list[dict[str, Any]]:
    """Every built variant (the ones present on disk) with its state: for the doctor."""
    rows = []
    for name in models or BUILT_MODELS:
        module = _module(name)
        for variant in module.VARIANTS:
            result = module.check(variant, full=full)
            if result.state == "missing":
                continue
            rows.append(
                {
                    "model": name,
                    "variant": variant,
                    "state": result.state,
                    "reason": result.reason,
                    "path": str(module.output_path(variant)),
                }
            )
    return rows


def repair_built(
    models: Iterable[str] | None = None, *, full: bool = True, quiet: bool = True
) -> list[dict[str, Any]]:
    """Check every built variant and rebuild the damaged or stale ones (``fetch --verify``).

    Returns the rows of :func:`check_built`, with ``state`` ``"rebuilt"`` where it rebuilt.
    """
    rows = check_built(models, full=full)
    for row in rows:
        if row["state"] in ("damaged", "stale"):
            module = _module(row["model"])
            module.build(row["variant"], quiet=quiet, force=True)
            after = module.check(row["variant"], full=True)
            if not after.ok:  # pragma: no cover - a builder that writes what it cannot verify
                raise ModelIntegrityError(
                    f"Rebuilding {row['model']} {row['variant']} did not give a verified model "
                    f"({after.reason}); check the disk ({row['path']})."
                )
            row["reason"] = f"rebuilt ({row['reason']})"
            row["state"] = "rebuilt"
    return rows


def models_for_assets(asset_keys: Iterable[str]) -> list[str]:
    """The built models that derive from the given fetched assets."""
    keys = set(asset_keys)
    return [name for name, (_mod, asset) in BUILT_MODELS.items() if asset in keys]
