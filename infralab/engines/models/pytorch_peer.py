"""The original embedding implementation (sentence-transformers on PyTorch), built offline.

Lesson 03 and ``python -m infralab bench embed`` compare the kit's ONNX encoder with the
library students would otherwise reach for, on the same sentences in the same run. The model
folder is assembled from the kit's fetched safetensors and tokenizer plus configuration files
written from the model's known values, so nothing is fetched from a hub. PyTorch is optional
(``pip install 'infralab[compare]'``): without it :func:`sentence_transformers_model` says
None and the comparison is left out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = ["sentence_transformers_model"]

# all-MiniLM-L6-v2's configuration, written beside the fetched weights (its known values)
_FILES: dict[str, Any] = {
    "config.json": {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384,
        "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512,
        "type_vocab_size": 2, "vocab_size": 30522, "layer_norm_eps": 1e-12,
        "initializer_range": 0.02, "pad_token_id": 0, "position_embedding_type": "absolute",
    },
    "tokenizer_config.json": {
        "do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer",
        "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
        "unk_token": "[UNK]", "mask_token": "[MASK]",
    },
    "modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ],
    "sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": False},
    "1_Pooling/config.json": {
        "word_embedding_dimension": 384, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    },
}  # fmt: skip


def sentence_transformers_model(threads: int | None = None) -> Any | None:
    """The original implementation, built offline from the kit's fetched files; None if absent.

    The model folder is assembled from the safetensors, the tokenizer and configuration
    files written from the model's known values, so nothing is fetched from a hub.
    """
    try:
        import sentence_transformers  # noqa: F401
        import torch
    except ImportError:
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from infralab.core.runtime import physical_cores

    folder = _st_folder()
    torch.set_num_threads(threads or physical_cores())
    return SentenceTransformer(str(folder), device="cpu")


def _st_folder() -> Path:
    """The model folder sentence-transformers reads: the fetched files linked, the rest written."""
    from infralab.core.assets import asset_paths, cache_dir

    folder = cache_dir() / "compare" / "st-minilm-l6"
    (folder / "1_Pooling").mkdir(parents=True, exist_ok=True)
    for name, src in asset_paths("minilm").items():
        _link_or_copy(src, folder / name)
    for name, content in _FILES.items():
        (folder / name).write_text(json.dumps(content, indent=1))
    return folder


def _link_or_copy(src: Path, link: Path) -> None:
    if link.is_symlink() and link.resolve() != src.resolve():
        link.unlink()
    if not link.exists():
        try:
            link.symlink_to(src)
        except OSError:  # e.g. Windows without symlink rights
            import shutil

            shutil.copyfile(src, link)
