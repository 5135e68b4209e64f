"""`python -m simulators.onestop`: serve the one-stop-shop simulator in the foreground."""

from simulators.onestop.server import main

raise SystemExit(main())
