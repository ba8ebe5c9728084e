"""Every location inside the repository that the kit reads, computed once.

Why one module: the repository root used to be derived separately in several modules, and
one of them read a folder outside the repository. Each path here lies inside the checkout
(an editable install), so a student's clone has everything the kit and its tests read.
Per-user caches (models, assets) are not here: ``infralab.core.assets.cache_dir`` owns those.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # infralab/core/paths.py
DATASETS_DIR = REPO_ROOT / "datasets"
PRICING_DIR = DATASETS_DIR / "pricing"
BENCHMARKS_DIR = DATASETS_DIR / "benchmarks"
# Outputs of the original implementations (sentence-transformers, transformers) that the
# fp32-parity tests and `bench embed` compare against; made by scripts/make_reference.py.
CORPUS_DIR = DATASETS_DIR / "corpus"
REFERENCE_DIR = DATASETS_DIR / "reference"
MINILM_REFERENCE = REFERENCE_DIR / "minilm_reference.json"
SMOLLM2_REFERENCE = REFERENCE_DIR / "smollm2_reference.json"
COURSE_DIR = REPO_ROOT / "course"
LABS_DIR = REPO_ROOT / "labs"
LANDSCAPE_CSV = DATASETS_DIR / "landscape.csv"
PEAKS_CSV = DATASETS_DIR / "compute_peaks.csv"
# What the class sizing reads: the measured notebook report (deploy/measured/).
NOTEBOOK_REPORT = REPO_ROOT / "deploy" / "measured" / "notebook_report.csv"
