"""`python -m daemon` is `vgw`."""

import sys

from daemon.cli import main

sys.exit(main())
