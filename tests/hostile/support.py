"""What every hostile-world test checks of a failure the operator sees: one line, its exit code, no traceback.

The hostile-world suite (`-m hostile`) probes the project from outside, as a hostile world would: real
`baocao` processes (`tests.delivery.support.run_cli`), loopback servers that misbehave on purpose, files
that are wrong in every way a drop folder allows. Each test is one case; the README counts them.
"""

from __future__ import annotations

import subprocess

EXIT_CODES = {"fatal": 1, "usage": 2, "data quality": 65, "retriable": 75}


def one_line_failure(result: subprocess.CompletedProcess[str], kind: str) -> str:
    """The one error line of a failed `baocao` process, after checking its exit code and that nothing
    else (a traceback, a second error) was printed; returns the line for the test's own assertions."""
    shown = f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == EXIT_CODES[kind], shown
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, shown
    errors = [line for line in result.stderr.splitlines() if line.lstrip().lower().startswith("error")]
    assert len(errors) == 1, shown
    return errors[0]
