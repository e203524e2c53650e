"""``python -m cpcframe`` is the ``cpcframe`` command."""

import sys

from cpcframe.cli import main

sys.exit(main())
