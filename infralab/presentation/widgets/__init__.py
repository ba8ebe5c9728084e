"""The lesson 05 dashboards (ipywidgets): the cost sliders (:class:`CostDashboard`, in
``cost_sliders``) and the measured workloads priced on every option
(:class:`WorkloadDashboard`, in ``workload_dashboard``)."""

from infralab.core.faces import lazy_face

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it; it loads on first use, so importing
# the package does not import Altair or ipywidgets.
_LAZY = {
    "CostDashboard": "cost_sliders",
    "WorkloadDashboard": "workload_dashboard",
    "cost_dashboard": "cost_sliders",
}
__all__ = ["CostDashboard", "WorkloadDashboard"]

__getattr__ = lazy_face(__name__, _LAZY)
