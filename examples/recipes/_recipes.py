"""The examples' local-server helper (``examples/_local.py``), for the recipes here."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _local import riptide_server  # noqa: E402

__all__ = ["riptide_server"]
