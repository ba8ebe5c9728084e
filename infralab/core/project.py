"""The one place that names where the course lives; badges and the Colab set-up read it.

Two branches: ``BRANCH`` is the instructor's (solutions, answer keys, the checks' reference
code, the tests); ``STUDENT_BRANCH`` is the student release that ``python -m infralab release
--branch`` builds from it. Everything a student launches (the badges in README, lessons and
labs, the Colab set-up cell) points at the student branch; the solution notebooks and the
instructor guide point at the instructor's branch.
"""

REPOSITORY = "https://github.com/infralab-course/infralab"
BRANCH = "main"
STUDENT_BRANCH = "student"
GITHUB_SLUG = REPOSITORY.removeprefix("https://github.com/")
# What the Colab set-up cell says its first run takes; the measurements behind it are in
# infralab/tooling/colab.py's docstring.
COLAB_INSTALL_TIME = "about 2 minutes"

# Paths that exist only on the instructor's branch: their badges and set-up cell use BRANCH.
INSTRUCTOR_PATHS = ("labs/solutions/",)


def branch_for(path: str | None) -> str:
    """The branch a launch link for ``path`` (relative to the repository) should open."""
    if path and path.startswith(INSTRUCTOR_PATHS):
        return BRANCH
    return STUDENT_BRANCH


def binder_url(path: str | None = None, branch: str | None = None) -> str:
    url = f"https://mybinder.org/v2/gh/{GITHUB_SLUG}/{branch or branch_for(path)}"
    return f"{url}?labpath={path}" if path else url


def colab_url(path: str, branch: str | None = None) -> str:
    branch = branch or branch_for(path)
    return f"https://colab.research.google.com/github/{GITHUB_SLUG}/blob/{branch}/{path}"


def badges_markdown(path: str | None = None, branch: str | None = None) -> str:
    """Launch badges for the repository, or for one notebook when ``path`` is given.

    The branch defaults to :func:`branch_for` ``path``: the student branch, except for
    instructor-only notebooks.
    """
    branch = branch or branch_for(path)
    binder = f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(path, branch)})"
    if path is None:
        path = "course/00_start_here.ipynb"
    colab = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(path, branch)})"
    return f"{binder} {colab}"
