"""The RAG service's API keys: each key names one tenant, and the key decides what a caller sees.

Keys come as ``key=tenant`` pairs (``INFRALAB_RAG_KEYS`` when none are passed); the service
keeps only their sha256 digests and compares every digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from fastapi import Request

from infralab.engines.rag.rag_errors import RagError

API_KEYS_ENV = "INFRALAB_RAG_KEYS"  # "key1=saas,key2=lawfirm" when no keys are passed


def parse_keys(spec: str) -> dict[str, str]:
    """``"key=tenant,key2=tenant2"`` -> ``{key: tenant}``."""
    keys: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, tenant = part.partition("=")
        if not sep or not key.strip() or not tenant.strip():
            raise RagError(
                f"API key entry {part!r} must look like key=tenant.",
                hint=f"Write {API_KEYS_ENV} as comma-separated pairs: key1=tenant_a,key2=tenant_b.",
            )
        keys[key.strip()] = tenant.strip()
    return keys


class KeyRing:
    """API keys stored as sha256 digests; lookup compares every digest in constant time."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        if not keys:
            raise RagError(
                f"no API keys: pass api_keys={{key: tenant}} or set {API_KEYS_ENV}.",
                hint="Each tenant needs its own key; the key decides which tenant's documents a caller sees.",
            )
        self._digests = [(hashlib.sha256(k.encode()).digest(), t) for k, t in keys.items()]

    def tenant(self, key: str | None) -> str | None:
        if not key:
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found = None
        for d, tenant in self._digests:  # no early exit: timing does not say which key
            if hmac.compare_digest(d, digest):
                found = tenant
        return found


def api_key_from(request: Request) -> str | None:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None
