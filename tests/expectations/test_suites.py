"""Each Great Expectations suite with one good and one bad fixture, on real engines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.periods import parse_period
from baocao.expectations import dossiers, tthc_report
from baocao.expectations.runner import Outcome, SuiteRunner
from baocao.storage import staging, warehouse
from baocao.transforms.canonical import canonical_frame, canonical_record
from baocao.transforms.tthc import assemble_tthc_report
from tests.transforms.test_tthc_aggregation import REGISTRY, _grouped


def _staged(tmp_path: Path, records: list[dict[str, object]]) -> Path:
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.db'}")
    warehouse.start_batch(engine, "b1", "test", "rest_onestop", None, datetime(2026, 11, 20))
    frame = canonical_frame(canonical_record(r, {}, {}) for r in records)
    warehouse.stage_dossiers(engine, "b1", frame, pulled=len(records), staging_dir=tmp_path / "staging")
    engine.dispose()
    return staging.batch_file(tmp_path / "staging", "b1")


def _validated(tmp_path: Path, staged: Path) -> Outcome:
    return SuiteRunner(tmp_path / "gx").validate_parquet(
        staged,
        suite_name=dossiers.SUITE_NAME,
        expectations=dossiers.dossier_suite(REGISTRY.codes),
        key_column="code",
        run_name="test",
    )


def good(code: str, **changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "code": code,
        "agency_code": "000.00.01.H99",
        "procedure_code": "1.000001",
        "field_code": "LV-TUPHAP",
        "field_name": "Tư pháp",
        "channel": "ONLINE",
        "status": "RESOLVED",
        "received_at": "2026-10-20T08:00:00+07:00",
        "due_at": "2026-10-25T17:00:00+07:00",
        "finished_at": "2026-10-24T10:00:00+07:00",
        "rating": 5,
        "updated_at": "2026-10-24T10:00:00+07:00",
        "deleted": False,
    }
    record.update(changes)
    return record


def test_dossier_suite_passes_good_records_and_names_each_bad_one(tmp_path: Path) -> None:
    staged = _staged(
        tmp_path,
        [
            good("ok-1"),
            good("ok-2", status="PROCESSING", finished_at=None),
            good("bad-agency", agency_code="999.99.99.H99"),
            good("bad-status", status="ĐANG XỬ LÝ"),
            good("bad-order", finished_at="2026-10-19T08:00:00+07:00"),
            good("bad-finish", finished_at=None),
            good("bad-due", due_at="2026-10-01T08:00:00+07:00", status="PROCESSING", finished_at=None),
            good("bad-field", field_code="LV TƯ PHÁP"),
        ],
    )
    runner = SuiteRunner(tmp_path / "gx")
    outcome = runner.validate_parquet(
        staged,
        suite_name=dossiers.SUITE_NAME,
        expectations=dossiers.dossier_suite(REGISTRY.codes),
        key_column="code",
        run_name="test",
    )
    assert not outcome.success
    assert outcome.failed_keys == {"bad-agency", "bad-status", "bad-order", "bad-finish", "bad-due", "bad-field"}
    rules = {f.key: f.rule for f in outcome.failures}
    assert "registry" in rules["bad-agency"] and "Known status" in rules["bad-status"]
    assert "finishing time" in rules["bad-finish"] and "due date" in rules["bad-due"]
    # Each failure shows the values the rule compared, read back from the staged file.
    details = {f.key: f.detail for f in outcome.failures}
    assert details["bad-status"] == "[expect_column_values_to_be_in_set] status='ĐANG XỬ LÝ'"
    assert details["bad-agency"] == "[expect_column_values_to_be_in_set] agency_code='999.99.99.H99'"
    assert (
        "finished_at=2026-10-19 08:00:00" in details["bad-order"]
        and "received_at=2026-10-20 08:00:00" in details["bad-order"]
    )
    assert details["bad-field"] == "[expect_column_values_to_match_regex] field_code='LV TƯ PHÁP'"
    assert outcome.docs_index is not None and outcome.docs_index.is_file()
    # The scratch database GX read is gone; the staged file stays until the merge.
    assert not list((tmp_path / "gx" / "scratch").iterdir()) and staged.is_file()


def _report(tmp_path: Path) -> pd.DataFrame:
    return assemble_tthc_report(
        _grouped(f"sqlite:///{tmp_path / 'w.db'}", "2026-11"), REGISTRY, parse_period("2026-11")
    )


def _check(tmp_path: Path, report: pd.DataFrame):  # type: ignore[no-untyped-def]
    return SuiteRunner(tmp_path / "gx").validate_frame(
        tthc_report.report_check_frame(report),
        suite_name=tthc_report.SUITE_NAME,
        expectations=tthc_report.report_suite(),
        key_column=tthc_report.ROW_LABEL,
        run_name="test",
    )


def test_report_suite_passes_a_consistent_report(tmp_path: Path) -> None:
    assert _check(tmp_path, _report(tmp_path)).success


def test_report_suite_names_rule_row_and_both_values(tmp_path: Path) -> None:
    report = _report(tmp_path)
    report.loc[0, "received_online"] = int(report.loc[0, "received_online"]) + 1
    outcome = _check(tmp_path, report)
    assert not outcome.success
    identity = [f for f in outcome.failures if f.rule.startswith("received_total = received_online")]
    assert identity and identity[0].key == "PROVINCE/000.00.01.H99/LV-TUPHAP"
    assert "received_total=15" in identity[0].detail and "received_parts=16" in identity[0].detail
    # The section total no longer equals the sum of its rows either.
    assert any(f.key == "PROVINCE total" and "received_online" in f.rule for f in outcome.failures)


def test_report_suite_catches_a_wrong_rate(tmp_path: Path) -> None:
    report = _report(tmp_path)
    report.loc[report["kind"] == "TOTAL", "on_time_rate"] = 75.01
    outcome = _check(tmp_path, report)
    assert [f.key for f in outcome.failures] == ["report total"]


def test_merge_keeps_the_stored_version_when_an_update_is_quarantined(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = warehouse.connect(url)
    for batch, status in (("b1", "PROCESSING"), ("b2", "NONSENSE")):
        warehouse.start_batch(engine, batch, "test", "rest_onestop", None, datetime(2026, 11, 20))
        record = good("d-1", status=status, finished_at=None, updated_at=f"2026-10-2{batch[1]}T10:00:00+07:00")
        frame = canonical_frame([canonical_record(record, {}, {})])
        warehouse.stage_dossiers(engine, batch, frame, pulled=1, staging_dir=tmp_path / "staging")
        if status == "NONSENSE":
            warehouse.record_quarantine(engine, batch, "test", [("d-1", "Known status", "status=NONSENSE")], "validate")
        staged = staging.batch_file(tmp_path / "staging", batch)
        assert warehouse.merge_batch(engine, batch, staged) == (0 if status == "NONSENSE" else 1)
        assert not staged.exists()
    with engine.connect() as connection:
        assert connection.execute(sa.select(tables.dossiers.c.status)).scalar_one() == "PROCESSING"
    assert warehouse.batch_summary(engine, "b2")["quarantined"] == 1


def test_a_check_that_cannot_run_holds_the_whole_batch_back(tmp_path: Path) -> None:
    """GX reports a metric error nested per metric; it must not pass for 'no failing record'."""
    import great_expectations.expectations as gxe

    staged = _staged(tmp_path, [good("ok-1"), good("ok-2")])
    outcome = SuiteRunner(tmp_path / "gx").validate_parquet(
        staged,
        suite_name="broken",
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="no_such_column", description="a check that cannot run")
        ],
        key_column="code",
        run_name="test",
    )
    assert not outcome.success
    assert outcome.incomplete_rules == ["a check that cannot run"]
    assert [f.key for f in outcome.failures] == ["(whole batch)"]


def test_repeated_codes_are_named_once_each_with_their_copies(tmp_path: Path) -> None:
    staged = _staged(tmp_path, [good("ok-1"), good("twice"), good("twice"), good("thrice")] + [good("thrice")] * 2)
    outcome = _validated(tmp_path, staged)
    assert not outcome.success and not outcome.incomplete_rules
    assert sorted((f.key, f.detail) for f in outcome.failures) == [
        ("thrice", "[expect_column_values_to_be_unique_in_batch] copies=3"),
        ("twice", "[expect_column_values_to_be_unique_in_batch] copies=2"),
    ]
    assert {f.rule for f in outcome.failures} == {"One row per dossier code in a batch, or counts double."}


def test_more_repeated_codes_than_can_be_listed_hold_the_batch_back(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from baocao.expectations.gx_adapter import unique_in_batch

    monkeypatch.setattr(unique_in_batch, "FETCH_LIMIT", 3)
    staged = _staged(tmp_path, [good(f"d-{n}") for n in range(4) for _ in range(2)])
    outcome = _validated(tmp_path, staged)
    assert outcome.incomplete_rules == ["One row per dossier code in a batch, or counts double."]
    assert len(outcome.failures) == 2  # listed up to the limit, and the batch is held back


def test_a_staged_batch_is_checked_without_gx_listing_the_failing_values(tmp_path: Path) -> None:
    """GX lists only the failing keys (`expectations.gx_adapter.keys_only`); the values come from the file."""
    staged = _staged(tmp_path, [good("ok-1"), good("bad-status", status="ĐANG XỬ LÝ")])
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        outcome = _validated(tmp_path, staged)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    assert outcome.failed_keys == {"bad-status"}
    assert {f.detail for f in outcome.failures} == {"[expect_column_values_to_be_in_set] status='ĐANG XỬ LÝ'"}
    # GX queried the failing keys, and no query fetched the failing values (`SELECT x AS unexpected_values …`).
    assert any(s.startswith("SELECT code, status FROM") for s in statements)
    assert not [s for s in statements if "unexpected_values" in s]


def test_unexpected_values_are_still_computed_when_the_result_format_keeps_them() -> None:
    from great_expectations.expectations.expectation import ColumnMapExpectation

    from baocao.expectations import gx_adapter

    gx_adapter.install()  # as SuiteRunner does
    rule = dossiers.dossier_suite(REGISTRY.codes)[3]  # agency in the registry (a column map rule)
    assert isinstance(rule, ColumnMapExpectation)

    def metrics(exclude: bool) -> list[str]:
        result_format = {"result_format": "COMPLETE", "exclude_unexpected_values": exclude}
        found = rule.get_validation_dependencies(runtime_configuration={"result_format": result_format})
        return found.get_metric_names()

    assert "column_values.in_set.unexpected_values" in metrics(exclude=False)
    assert "column_values.in_set.unexpected_values" not in metrics(exclude=True)
    assert "column_values.in_set.unexpected_index_list" in metrics(exclude=True)


def test_data_docs_templates_are_compiled_once_not_on_every_run(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import jinja2

    compiled: list[str | None] = []
    compile_template = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):  # type: ignore[no-untyped-def]
        compiled.append(name)
        return compile_template(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    staged = _staged(tmp_path, [good("ok-1"), good("bad-status", status="ĐANG XỬ LÝ")])
    first = _validated(tmp_path, staged)
    first_compiles = len(compiled)
    page_count = len(list((tmp_path / "gx").rglob("validations/**/*.html")))
    second = SuiteRunner(tmp_path / "gx").validate_parquet(
        staged,
        suite_name=dossiers.SUITE_NAME,
        expectations=dossiers.dossier_suite(REGISTRY.codes),
        key_column="code",
        run_name="second",
    )
    # The second run (a new runner, as in the next task's process) compiled nothing: the templates
    # were compiled once and kept beside the Data Docs.
    assert first_compiles > 10 and len(compiled) == first_compiles
    assert list((tmp_path / "gx" / "gx" / "uncommitted" / "compiled_templates").iterdir())
    assert first.failed_keys == second.failed_keys == {"bad-status"}
    pages = list((tmp_path / "gx").rglob("validations/**/*.html"))
    assert len(pages) == page_count + 1
    newest = max(pages, key=lambda p: p.stat().st_mtime).read_text(encoding="utf-8")
    assert "Known status" in newest and "canonical_dossiers" in newest
    index = second.docs_index
    assert index is not None and "second" in index.read_text(encoding="utf-8")
