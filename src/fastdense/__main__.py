"""``python -m fastdense COMMAND``: the command line, `fastdense.cli.main`.

``main`` is re-exported here for the ``fastdense`` script (``fastdense.__main__:main`` in
pyproject.toml) and for code that imports it from this module.
"""
import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
