"""Training and fine-tuning on the kit's own data, and what a real training run costs.

``data``: the fine-tuning set built from the corpus, with provenance and content hashes.
``head``: a classifier head trained with plain numpy on frozen MiniLM embeddings, with
checkpoints that resume bit for bit. ``flops``: the arithmetic of training compute.
What a run costs (GPU prices, the 6 x parameters x tokens rule, spot interruptions, the
reserved-capacity trap) is economics: :mod:`infralab.economics.costs.training_bill`. The
lesson's Altair charts are :mod:`infralab.presentation.charts.training`.
"""

from infralab.core.faces import lazy_face

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY = {}
_FACES = (
    "baselines",
    "data",
    "head",
)
__all__ = sorted([*_LAZY, *_FACES])

__getattr__ = lazy_face(__name__, _LAZY, _FACES)
