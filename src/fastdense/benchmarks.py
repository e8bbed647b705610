"""The benchmark suite's former home, kept so that ``fastdense.benchmarks.main`` (what
``python -m fastdense bench`` runs) and ``python -m fastdense.benchmarks`` keep working: the
suite is the subpackage ``fastdense.bench`` now, and this module re-exports its public
names."""
import sys

from .bench import *  # noqa: F401,F403  (the public names, listed in bench.__all__)
from .bench import __all__ as __all__  # noqa: F401
from .bench import main

if __name__ == "__main__":
    sys.exit(main())
