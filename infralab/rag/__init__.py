"""Multi-tenant retrieval-augmented generation, split between cloud and AI infrastructure.

``corpus`` loads documents and questions, ``chunking`` splits them, ``store`` (Qdrant) and
``lexical`` (BM25) index them per tenant, ``hybrid`` fuses the two, ``generate`` answers with
citations, ``evaluate`` scores retrieval, and ``cloud_app`` is the tenant-facing service.
"""
