"""The RAG package's error types (besides CorpusError, for corpus files, and
TenantScopeError, for a search outside the caller's tenant)."""

from __future__ import annotations

from infralab.core.errors import InfralabError


class RagError(ValueError, InfralabError):
    """Bad input to retrieval, scoring or the RAG service; the message names the value."""

    hint = "help() on the function you called lists its arguments and what each allows."


class RagServiceError(RuntimeError, InfralabError):
    """The RAG service answered a request with an error (a RuntimeError, as it always was)."""

    hint = "Read the status and body in the message; the service's log says more."
