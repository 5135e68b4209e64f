"""Publishing through the ledger to the real central sandbox on loopback.

Each test freezes a submission from hand-computed dossiers, then checks what the sandbox holds:
one copy, the same key on every try, rejections never retried.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from baocao.connectors.central import CentralClient
from baocao.core import tables
from baocao.core.errors import DataQualityError, FatalError, RetriableError
from baocao.core.settings import Config
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.simulators.central.server import RunningSandbox, start_in_thread
from baocao.simulators.central.settings import Settings
from baocao.storage import ledger, warehouse
from tests import central_readback
from tests.report_storage import store_altered
from tests.transforms.test_tthc_aggregation import DOSSIERS, REGISTRY

TOKEN = "test-central-token"
PERIOD = "2026-11"


@dataclass
class World:
    config: Config
    sandbox: RunningSandbox

    def central_copies(self) -> list[dict[str, object]]:
        return central_readback.submissions(self.sandbox.base_url, TOKEN, "TTHC_RESULTS", PERIOD)


@pytest.fixture(params=["xml", "json"])
def world(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'central.db'}", tokens={TOKEN: demo.DEMO_SENDER})
    with start_in_thread(settings) as sandbox:
        monkeypatch.setenv(demo.CENTRAL_TOKEN_ENV, TOKEN)
        monkeypatch.setenv(demo.CLIENT_ID_ENV, "unused")
        monkeypatch.setenv(demo.CLIENT_SECRET_ENV, "unused")
        config_path = tmp_path / "baocao.toml"
        demo.write_config(
            config_path,
            onestop_url="http://127.0.0.1:9",
            central_url=sandbox.base_url,
            fmt=request.param,
            retry={"max_attempts": 3, "backoff_base_seconds": 0.05, "backoff_max_seconds": 2},
        )
        (tmp_path / "agencies.csv").write_text(
            "code,name,level\n" + "".join(f"{a.code},{a.name},{a.level.value}\n" for a in REGISTRY.agencies),
            encoding="utf-8",
        )
        config = load_config(config_path)
        engine = warehouse.connect(config.warehouse_url)
        with engine.begin() as connection:
            connection.execute(sa.insert(tables.dossiers), DOSSIERS)
        pipeline.aggregate(config, "TTHC_RESULTS", PERIOD)
        pipeline.validate_report(config, "TTHC_RESULTS", PERIOD)
        yield World(config, sandbox)


def test_published_once_and_a_rerun_sends_nothing(world: World) -> None:
    rendered = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    assert rendered.submission is not None
    receipt = pipeline.publish(world.config, rendered.submission.id)
    assert receipt["status"] == "accepted"
    assert receipt["sha256"] == hashlib.sha256(rendered.payload).hexdigest()

    again = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    assert again.submission is not None
    assert (again.submission.id, again.submission.idempotency_key, again.payload) == (
        rendered.submission.id,
        rendered.submission.idempotency_key,
        rendered.payload,
    )
    assert pipeline.publish(world.config, again.submission.id) == receipt
    stored = ledger.get(pipeline.engine_for(world.config), rendered.submission.id)
    assert (stored.state, stored.attempts) == (ledger.State.ACCEPTED, 1)  # the rerun made no POST
    assert len(world.central_copies()) == 1


def test_a_lost_answer_is_recovered_by_replay_without_a_second_copy(world: World) -> None:
    rendered = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    assert rendered.submission is not None
    # The POST reaches the central but the worker dies before storing the answer.
    first = CentralClient(world.config.central).submit(
        rendered.payload, rendered.submission.idempotency_key, rendered.submission.content_type
    )
    receipt = pipeline.publish(world.config, rendered.submission.id)
    assert receipt["receipt_id"] == first.receipt["receipt_id"]  # type: ignore[index]
    attempts = _attempt_outcomes(world.config, rendered.submission.id)
    assert attempts == ["ACCEPTED (replayed)"]
    assert len(world.central_copies()) == 1


def test_maintenance_exhausts_the_budget_then_the_backlog_drains(world: World) -> None:
    rendered = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    assert rendered.submission is not None
    world.sandbox.set_mode("maintenance", retry_after=1)
    with pytest.raises(RetriableError, match="503"):
        pipeline.publish(world.config, rendered.submission.id)
    held = ledger.get(pipeline.engine_for(world.config), rendered.submission.id)
    assert held.state == ledger.State.FROZEN and "503" in (held.last_error or "")
    world.sandbox.set_mode("normal")
    receipt = pipeline.publish(world.config, rendered.submission.id)
    assert receipt["sha256"] == hashlib.sha256(rendered.payload).hexdigest()  # the same frozen bytes
    assert len(world.central_copies()) == 1


def test_a_rule_failure_at_the_central_is_not_retried_and_frees_the_slot(world: World) -> None:
    engine = pipeline.engine_for(world.config)
    good = pipeline.render(world.config, "TTHC_RESULTS", PERIOD, dry_run=True).payload
    broken = good.replace(b'receivedTotal="18"', b'receivedTotal="19"').replace(
        b'"received_total":18', b'"received_total":19'
    )
    assert broken != good
    submission = ledger.freeze(
        engine,
        report_type="TTHC_RESULTS",
        period_id=PERIOD,
        regime="D09",
        sender=demo.DEMO_SENDER,
        version=1,
        fmt=world.config.central.format.value,
        content_type="application/xml" if good.startswith(b"<") else "application/json",
        render=lambda _: broken,
    )
    with pytest.raises(FatalError, match="RULE_FAILED"):
        pipeline.publish(world.config, submission.id)
    rejected = ledger.get(engine, submission.id)
    assert (rejected.state, rejected.attempts) == (ledger.State.REJECTED, 1)
    assert _attempt_outcomes(world.config, submission.id) == ["REJECTED"]
    # The slot is free: the next run freezes a correct payload under a new key and it is accepted.
    fixed = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    assert fixed.submission is not None and fixed.submission.idempotency_key != submission.idempotency_key
    assert pipeline.publish(world.config, fixed.submission.id)["status"] == "accepted"
    assert len(world.central_copies()) == 1


def test_a_reused_key_is_a_conflict_and_is_not_retried(world: World) -> None:
    rendered = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    assert rendered.submission is not None
    other = rendered.payload.replace(b"UBND t\xe1\xbb\x89nh M\xe1\xba\xabu", b"UBND t\xe1\xbb\x89nh Kh\xc3\xa1c")
    assert other != rendered.payload
    CentralClient(world.config.central).submit(
        other, rendered.submission.idempotency_key, rendered.submission.content_type
    )
    with pytest.raises(FatalError, match="IDEMPOTENCY_KEY_REUSED"):
        pipeline.publish(world.config, rendered.submission.id)
    failed = ledger.get(pipeline.engine_for(world.config), rendered.submission.id)
    assert (failed.state, failed.attempts) == (ledger.State.FAILED, 1)


def test_a_failed_report_rule_blocks_publication(world: World) -> None:
    def one_more_late(report: pd.DataFrame) -> None:  # an aggregation that counted one dossier twice
        report.loc[(report["kind"] == "ROW") & (report["agency"] == "000.00.01.H99"), "resolved_late"] += 1

    store_altered(world.config, "TTHC_RESULTS", PERIOD, one_more_late)
    with pytest.raises(DataQualityError) as caught:
        pipeline.validate_report(world.config, "TTHC_RESULTS", PERIOD)
    message = str(caught.value)
    assert "resolved_total = resolved_early + resolved_on_time + resolved_late" in message
    assert "PROVINCE/000.00.01.H99/LV-TUPHAP" in message and "resolved_total=9" in message
    assert world.central_copies() == []


def _attempt_outcomes(config: Config, submission: int) -> list[str]:
    with pipeline.engine_for(config).connect() as connection:
        return list(
            connection.execute(
                sa.select(tables.submission_attempts.c.outcome)
                .where(tables.submission_attempts.c.submission == submission)
                .order_by(tables.submission_attempts.c.id)
            ).scalars()
        )


@pytest.mark.parametrize(("policy", "error"), [("wait", RetriableError), ("fail", FatalError)])
def test_completeness_policy_holds_back_a_report_with_missing_agencies(
    world: World, policy: str, error: type[Exception]
) -> None:
    text = world.config.path.read_text(encoding="utf-8")
    world.config.path.write_text(
        text.replace('period_type = "MONTH"', f'period_type = "MONTH"\ncompleteness = "{policy}"'), encoding="utf-8"
    )
    config = load_config(world.config.path)
    with pytest.raises(error, match=r"1 of 3 expected agencies reported nothing: 000\.01\.02\.H99"):
        pipeline.validate_report(config, "TTHC_RESULTS", PERIOD)
    assert world.central_copies() == []
