"""The models package's error types for bad input (ModelIntegrityError, in manifest.py, is
for a built model that does not match its manifest)."""

from __future__ import annotations

from infralab.core.errors import InfralabError


class ModelError(ValueError, InfralabError):
    """Bad input to a model helper (a size, a dtype, a count); the message names it."""


class ModelTypeError(TypeError, ModelError):
    """An argument of the wrong kind (a TypeError, as it always was)."""


class ModelUnsupported(RuntimeError, ModelError):
    """What was asked cannot run on this machine or install (a RuntimeError, as it always was)."""
