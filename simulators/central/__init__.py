"""Sandbox of the central reporting endpoint (central-api.md, version 1) for the demo and the tests.

``create_app(settings)`` builds the FastAPI app; ``start_in_thread(settings)`` serves it on loopback
for tests; ``python -m simulators.central`` serves it in the foreground.
"""

from baocao.simulators.central.app import create_app
from baocao.simulators.central.server import RunningSandbox, main, start_in_thread
from baocao.simulators.central.settings import Settings

__all__ = ["RunningSandbox", "Settings", "create_app", "main", "start_in_thread"]
