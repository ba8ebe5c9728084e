"""`python -m infralab bench rag`: retrieval quality, per-stage latency and the bill per placement."""

from infralab.rag.evaluate import main

__all__ = ["main"]
