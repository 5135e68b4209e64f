"""`python -m simulators.onestop`: serve the one-stop-shop simulator in the foreground."""

from baocao.simulators.onestop.server import main

raise SystemExit(main())
