"""``python -m simulators.central``: serve the central sandbox in the foreground."""

import sys

from baocao.simulators.central.server import main

sys.exit(main())
