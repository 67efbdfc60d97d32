"""``python -m floorstream``: the same command line as the ``floorstream`` script."""

import sys

from floorstream.cli import main

sys.exit(main())
