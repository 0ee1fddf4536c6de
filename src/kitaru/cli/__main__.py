"""``python -m kitaru.cli``: the same as the ``kitaru`` command."""

import sys

from kitaru.cli import main

sys.exit(main())
