"""``python -m riptide_sync.cli``: the same as the ``riptide-sync`` command."""

import sys

from riptide_sync.cli import main

sys.exit(main())
