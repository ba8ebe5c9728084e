"""Grading that a class can trust: the submission in a sandboxed kernel, the checks outside it.

``sandbox`` starts the walled-off kernel, ``remote`` carries plain data between it and the
grader, ``kernel_rpc`` is the part that runs inside the kernel; ``infralab.tooling.grade`` puts them
together into the command-line grader.
"""

# The face is empty: the grader's machinery is for ``python -m infralab grade``, not lessons.
__all__: list[str] = []
