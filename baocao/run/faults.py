"""Test hook: let a test kill a run at a named point of the delivery path (or just after staging).

The crash-safety tests (tests/delivery/) run the publisher as a real process with
`BAOCAO_CRASH_AT=<point>` in its environment; `crash_point(<point>)` then sends the process SIGKILL,
as a power cut or the OOM killer would, with no cleanup, no `finally`, no flushing. Without the
variable (always, in production) it does nothing.
"""

from __future__ import annotations

import os
import signal

CRASH_AT_ENV = "BAOCAO_CRASH_AT"

# The submission is frozen in the ledger; nothing has been sent.
BEFORE_POST = "before_post"
# The central has answered (it holds the submission); the answer is not stored in the ledger yet.
AFTER_ANSWER = "after_answer"

# A batch is staged (its file written, its row STAGED); validate has not merged it.
AFTER_STAGE = "after_stage"

CRASH_POINTS = frozenset({BEFORE_POST, AFTER_ANSWER, AFTER_STAGE})


def crash_point(name: str) -> None:
    """SIGKILL this process if `$BAOCAO_CRASH_AT` names this point; a no-op otherwise."""
    if name not in CRASH_POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    if os.environ.get(CRASH_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
