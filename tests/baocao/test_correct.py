"""Corrections (`baocao correct`): version n+1 supersedes the accepted receipt, shows its diff first,
and is refused when nothing changed — against the real sandbox on loopback, XML and JSON."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from baocao.cli import main
from baocao.core import tables
from baocao.core.errors import FatalError
from baocao.run import pipeline
from baocao.storage import ledger, warehouse
from tests.baocao import test_publish
from tests.baocao.test_publish import PERIOD, World

world = test_publish.world  # the same fixture: a sandbox on loopback and a warehouse with the hand-made dossiers

DEPARTMENT_ROW = "agency=000.00.01.H99, field=LV-TUPHAP"


def _publish_first(world: World) -> ledger.Submission:
    rendered = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    assert rendered.submission is not None
    pipeline.publish(world.config, rendered.submission.id)
    return ledger.get(pipeline.engine_for(world.config), rendered.submission.id)


def _resolve_d04_on_time(world: World) -> None:
    """d04 was resolved late; the department's system corrects its finishing time to within the deadline."""
    engine = warehouse.connect(world.config.warehouse_url)
    with engine.begin() as connection:
        connection.execute(
            sa.update(tables.dossiers)
            .where(tables.dossiers.c.code == "d04")
            .values(finished_at=datetime(2026, 10, 20, 10, 0))
        )


def test_a_correction_supersedes_the_receipt_after_showing_its_diff(world: World) -> None:
    first = _publish_first(world)
    _resolve_d04_on_time(world)
    shown: list[str] = []

    dry = pipeline.correct(
        world.config,
        "TTHC_RESULTS",
        PERIOD,
        "d04 finished on time",
        dry_run=True,
        pull=False,
        show=lambda base, changes: shown.extend(str(c) for c in changes),
    )
    assert dry.rendered.submission is None and dry.rendered.path.exists()
    assert len(world.central_copies()) == 1  # the dry run sent nothing
    late = [line for line in shown if DEPARTMENT_ROW in line and line.endswith("resolved_late: 3 → 2")]
    assert late, shown

    shown.clear()
    done = pipeline.correct(
        world.config,
        "TTHC_RESULTS",
        PERIOD,
        "d04 finished on time",
        pull=False,
        show=lambda base, changes: shown.extend(str(c) for c in changes),
    )
    assert done.base.id == first.id and done.receipt is not None
    assert [line for line in shown if line.endswith("resolved_late: 3 → 2")]  # shown before it was sent
    v2 = done.rendered.submission
    assert v2 is not None and (v2.version, v2.supersedes) == (2, first.receipt_id)
    assert first.receipt_id is not None and first.receipt_id.encode() in v2.payload
    assert b"d04 finished on time" in v2.payload
    stored = ledger.get(pipeline.engine_for(world.config), v2.id)
    assert stored.state == ledger.State.ACCEPTED
    copies = world.central_copies()
    assert len(copies) == 2
    print(f"\n{world.config.report('TTHC_RESULTS').format.value}: v2 accepted, {len(shown)} cells changed:")
    print("\n".join(shown[:6]))

    # Nothing changed since v2: refused, and nothing is sent.
    with pytest.raises(FatalError, match="nothing changed since the accepted version v2"):
        pipeline.correct(world.config, "TTHC_RESULTS", PERIOD, "again", pull=False)
    assert len(world.central_copies()) == 2


def test_nothing_accepted_means_nothing_to_correct(world: World) -> None:
    with pytest.raises(FatalError, match="no accepted version to correct"):
        pipeline.correct(world.config, "TTHC_RESULTS", PERIOD, "a reason", pull=False)
    assert world.central_copies() == []


def test_the_cli_shows_the_diff_on_a_dry_run(world: World) -> None:
    _publish_first(world)
    _resolve_d04_on_time(world)
    args = ["correct", "--report", "TTHC_RESULTS", "--period", PERIOD, "--reason", "d04", "--dry-run", "--no-pull"]
    result = CliRunner().invoke(main, [*args, "--config", str(world.config.path)])
    assert result.exit_code == 0, result.output
    assert "against the accepted v1" in result.output
    assert "resolved_late: 3 → 2" in result.output
    assert "dry run" in result.output
    assert len(world.central_copies()) == 1
