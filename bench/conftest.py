"""pytest-benchmark suites of this folder: ``pytest bench/ --benchmark-only``.

The ``test_bench_*.py`` files are collected whatever ``python_files`` says (a
``bench/pytest.ini`` may narrow it to ``bench_*.py``), and only once.
"""
from fnmatch import fnmatch

import pytest


def pytest_collect_file(file_path, parent):
    if not (file_path.name.startswith("test_bench_") and file_path.suffix == ".py"):
        return None
    if any(fnmatch(file_path.name, pat) for pat in parent.config.getini("python_files")):
        return None       # the default collector takes it
    return pytest.Module.from_parent(parent, path=file_path)
