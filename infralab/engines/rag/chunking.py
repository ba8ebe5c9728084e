"""Split documents into overlapping chunks: the unit that is embedded, searched and cited.

Sizes are counted in words, not tokens: it keeps the lesson's knobs readable and stays well
under the embedder's 256-token limit for the defaults (about 1.3 tokens per English word).
Overlap keeps a fact that straddles a boundary whole in at least one chunk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from infralab.engines.rag.corpus import Document
from infralab.engines.rag.rag_errors import RagError

DEFAULT_SIZE = 120
DEFAULT_OVERLAP = 30


@dataclass(frozen=True)
class Chunk:
    """A piece of one document; ``chunk_id`` is what answers cite."""

    chunk_id: str
    doc_id: str
    tenant: str
    title: str
    text: str
    position: int

    @property
    def embed_text(self) -> str:
        """Title plus text: the title often carries the words a question uses."""
        return f"{self.title}. {self.text}"


def split_words(text: str, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP) -> list[str]:
    """Windows of ``size`` words that start every ``size - overlap`` words.

    Line breaks inside a window are kept: paragraphs still mean something downstream (the
    injection screen removes a whole paragraph, not one sentence of it)."""
    if not isinstance(size, int) or size < 1:
        raise RagError(
            f"size must be a positive whole number of words, got {size!r}.",
            hint=f"Try the default: size={DEFAULT_SIZE} words.",
        )
    if not isinstance(overlap, int) or overlap < 0 or overlap >= size:
        raise RagError(
            f"overlap must be a whole number from 0 to size-1 (= {size - 1}), got {overlap!r}; "
            "an overlap as large as the chunk would never move forward.",
            hint=f"A quarter of the chunk is a common choice (the default: {DEFAULT_OVERLAP} of {DEFAULT_SIZE}).",
        )
    words = re.findall(r"\S+\s*", text)  # each word keeps its trailing space or line break
    if not words:
        return []
    step = size - overlap
    pieces: list[str] = []
    for start in range(0, len(words), step):
        pieces.append("".join(words[start : start + size]).strip())
        if start + size >= len(words):
            break
    return pieces


def chunk_documents(
    docs: Iterable[Document], size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Chunk every document; ids are ``<doc_id>#<n>`` so a citation names its source."""
    chunks: list[Chunk] = []
    for doc in docs:
        for i, piece in enumerate(split_words(doc.text, size, overlap)):
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}#{i}",
                    doc_id=doc.doc_id,
                    tenant=doc.tenant,
                    title=doc.title,
                    text=piece,
                    position=i,
                )
            )
    return chunks
