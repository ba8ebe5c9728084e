"""infralab: the library behind the course kit *AI infrastructure versus traditional cloud*.

Notebooks call this package; everything worth testing lives here. Importing it is cheap
and downloads nothing: models are fetched by ``python -m infralab fetch`` (or on first use).
"""

__version__ = "0.1.0"
