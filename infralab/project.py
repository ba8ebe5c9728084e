"""The one place that names where the course lives; badges and the Colab set-up read it."""

REPOSITORY = "https://github.com/infralab-course/infralab"
BRANCH = "main"
GITHUB_SLUG = REPOSITORY.removeprefix("https://github.com/")


def binder_url(path: str | None = None) -> str:
    url = f"https://mybinder.org/v2/gh/{GITHUB_SLUG}/{BRANCH}"
    return f"{url}?labpath={path}" if path else url


def colab_url(path: str) -> str:
    return f"https://colab.research.google.com/github/{GITHUB_SLUG}/blob/{BRANCH}/{path}"


def badges_markdown(path: str | None = None) -> str:
    """Launch badges for the repository, or for one notebook when ``path`` is given."""
    binder = f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(path)})"
    if path is None:
        path = "course/00_start_here.ipynb"
    colab = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(path)})"
    return f"{binder} {colab}"
