"""Load and validate the RAG corpus: Markdown documents with front matter, and questions.

The corpus lives in ``datasets/corpus/<tenant>/<doc_id>.md``; each file starts with a block of
``key: value`` lines between ``---`` lines. Validation is strict on purpose: a document filed
under the wrong tenant folder would silently leak across tenants later, so it is an error
here, with the file name in the message.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from infralab.core.errors import InfralabError
from infralab.core.paths import CORPUS_DIR

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "load_documents",
    "load_questions",
]


TENANTS: tuple[str, ...] = ("saas", "lawfirm", "web3")
# CORPUS_DIR (datasets/corpus) comes from infralab.core.paths, the one map of the repository.
REQUIRED_FIELDS = ("tenant", "doc_id", "title")


class CorpusError(ValueError, InfralabError):
    """A corpus file that cannot be used; the message names the file and the fix."""

    hint = (
        "Each document needs front matter (title, tenant); tests/data/rag_corpus shows the format."
    )


@dataclass(frozen=True)
class Document:
    """One tenant document; ``meta`` keeps every front-matter field (e.g. ``injection``)."""

    doc_id: str
    tenant: str
    title: str
    text: str
    type: str = ""
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def injection(self) -> bool:
        """True for the planted prompt-injection document (security lesson)."""
        return self.meta.get("injection", "").strip().lower() == "true"


@dataclass(frozen=True)
class Question:
    """One evaluation question; unanswerable ones have no gold documents."""

    qid: str
    tenant: str
    question: str
    gold_doc_ids: tuple[str, ...]
    key_facts: tuple[str, ...]
    answerable: bool


def parse_front_matter(raw: str, source: str = "<text>") -> tuple[dict[str, str], str]:
    """Split ``raw`` into (front-matter fields, body). Values may be quoted."""
    lines = raw.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise CorpusError(f"{source}: no front matter; the file must start with a '---' line.")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise CorpusError(
            f"{source}: front matter never closed; add a second '---' line."
        ) from None
    meta: dict[str, str] = {}
    for lineno, line in enumerate(lines[1:end], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise CorpusError(f"{source}:{lineno}: expected 'key: value', got {line!r}.")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        meta[key.strip()] = value
    body = "\n".join(lines[end + 1 :]).strip()
    return meta, body


def parse_document(path: Path) -> Document:
    """Read one Markdown file into a :class:`Document`, checking its fields."""
    meta, body = parse_front_matter(path.read_text(encoding="utf-8"), str(path))
    missing = [f for f in REQUIRED_FIELDS if not meta.get(f)]
    if missing:
        raise CorpusError(f"{path}: front matter lacks {', '.join(missing)}.")
    if meta["tenant"] not in TENANTS:
        raise CorpusError(f"{path}: unknown tenant {meta['tenant']!r}; use one of {TENANTS}.")
    if not body:
        raise CorpusError(f"{path}: the document has no text after its front matter.")
    return Document(
        doc_id=meta["doc_id"],
        tenant=meta["tenant"],
        title=meta["title"],
        text=body,
        type=meta.get("type", ""),
        meta=meta,
    )


def load_documents(root: Path | str | None = None) -> list[Document]:
    """All documents under ``root`` (default: the kit's corpus), sorted by doc id.

    Each file must sit in the folder of its own tenant and doc ids must be unique.
    """
    base = Path(root) if root is not None else CORPUS_DIR
    if not base.is_dir():
        raise CorpusError(f"corpus folder {base} does not exist.")
    docs: list[Document] = []
    seen: dict[str, Path] = {}
    for path in sorted(base.glob("*/*.md")):
        if path.parent.name not in TENANTS:
            continue
        doc = parse_document(path)
        if doc.tenant != path.parent.name:
            raise CorpusError(
                f"{path}: front matter says tenant {doc.tenant!r} but the file is in the "
                f"{path.parent.name!r} folder; a mislabelled file would leak across tenants."
            )
        if doc.doc_id in seen:
            raise CorpusError(f"{path}: doc_id {doc.doc_id!r} already used by {seen[doc.doc_id]}.")
        seen[doc.doc_id] = path
        docs.append(doc)
    if not docs:
        raise CorpusError(f"no documents found under {base}/<tenant>/*.md.")
    return sorted(docs, key=lambda d: d.doc_id)


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(";") if part.strip())


def load_questions(
    path: Path | str | None = None, documents: list[Document] | None = None
) -> list[Question]:
    """Questions from ``questions.csv``; with ``documents``, gold ids are checked to exist
    and to belong to the question's own tenant."""
    if path is None:
        path = CORPUS_DIR / "questions.csv"
    csv_path = Path(path)
    if not csv_path.is_file():
        raise CorpusError(f"questions file {csv_path} does not exist.")
    owner = {d.doc_id: d.tenant for d in documents} if documents is not None else None
    questions: list[Question] = []
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        needed = {"qid", "tenant", "question", "gold_doc_ids", "key_facts", "answerable"}
        missing = needed - set(reader.fieldnames or ())
        if missing:
            raise CorpusError(f"{csv_path}: missing columns {sorted(missing)}.")
        for row_no, row in enumerate(reader, start=2):
            where = f"{csv_path}:{row_no}"
            answerable_raw = (row["answerable"] or "").strip().lower()
            if answerable_raw not in ("true", "false"):
                raise CorpusError(f"{where}: answerable must be true or false.")
            q = Question(
                qid=row["qid"].strip(),
                tenant=row["tenant"].strip(),
                question=row["question"].strip(),
                gold_doc_ids=_split(row["gold_doc_ids"]),
                key_facts=_split(row["key_facts"]),
                answerable=answerable_raw == "true",
            )
            if q.tenant not in TENANTS:
                raise CorpusError(f"{where}: unknown tenant {q.tenant!r}.")
            if not q.question:
                raise CorpusError(f"{where}: empty question.")
            if q.answerable and not q.gold_doc_ids:
                raise CorpusError(f"{where}: an answerable question needs gold_doc_ids.")
            if owner is not None:
                for doc_id in q.gold_doc_ids:
                    if doc_id not in owner:
                        raise CorpusError(f"{where}: gold doc {doc_id!r} is not in the corpus.")
                    if owner[doc_id] != q.tenant:
                        raise CorpusError(
                            f"{where}: gold doc {doc_id!r} belongs to {owner[doc_id]!r}, "
                            f"not to the question's tenant {q.tenant!r}."
                        )
            questions.append(q)
    if not questions:
        raise CorpusError(f"{csv_path}: no questions.")
    return questions
