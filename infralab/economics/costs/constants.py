"""The economics constants, one copy: month length, the default machines, sentinel words.

Every cost module imports these names from here; none defines its own.
"""

from __future__ import annotations

HOURS_PER_MONTH = 730.0  # the convention cloud price pages use (8,760 h / 12)
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24.0
NO_REQUESTS = "no requests served"

# The GPU the kit's recorded GPU runs were measured on (datasets/benchmarks/*_gpu_h200.json):
# a GPU option is priced at the GPU its throughput was measured on, so the default is that one.
DEFAULT_GPU = "H200"
# A 2-vCPU x86 VM like the machines lessons 02-04 measure on (datasets/pricing/cpu_vm.csv).
DEFAULT_VM = "c7i.large"
# The cloud the scenarios' app tier runs on (its Lambda, egress and GPU prices are in the data).
APP_CLOUD = "aws"
