"""Run the benchmarks from a checkout: ``python bench/run.py [options]``.

The same as ``python -m fastdense bench [options]``; see ``--help``. The package must be
importable (installed, or ``PYTHONPATH=src`` after ``python setup.py build_ext --inplace``).
"""
import sys
from pathlib import Path

try:
    from fastdense.bench import main
except ImportError:   # a checkout with the extensions built in place
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from fastdense.bench import main

if __name__ == "__main__":
    sys.exit(main())
