"""Benchmarks: a timing harness shared by every lesson, and one module per benchmark target.

`python -m infralab bench TARGET` runs ``infralab.bench.TARGET.main(argv)``.
"""

from infralab.bench.harness import Timing, measure, percentiles

__all__ = ["Timing", "measure", "percentiles"]
