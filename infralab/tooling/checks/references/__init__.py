"""The checks' references: the definitions a student's work is compared with, and every
expected answer (grader only).

One module per lab (``labNN``) and ``lesson01``; a check module reaches its own through
:func:`infralab.tooling.checks.reference_module`. The student release leaves this folder out, and the
checks then run their public checks instead, so nothing here may be imported elsewhere.
"""
