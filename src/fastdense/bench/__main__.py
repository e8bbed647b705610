"""``python -m fastdense.bench [options]``: the same as ``python -m fastdense bench``."""
import sys

from . import main

sys.exit(main())
