"""`baocao`: run a report, correct it, look at the ledger, publish what is pending, export a stored report.

A development install adds `demo`, `simulate` and `sandbox` (`baocao.simulators.commands`)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import click
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from baocao.core.errors import BaocaoError
from baocao.core.report import ReportType
from baocao.run.config import check_config, load_config
from baocao.terminal import console, fail, out, print_total


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    for noisy in ("great_expectations", "urllib3", "alembic", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _Commands(click.Group):
    """The command group; a warehouse that stops answering in the middle of any command ends it with
    one retriable line (exit 75), as one that does not answer at start does."""

    def invoke(self, ctx: click.Context) -> Any:
        import sqlalchemy as sa

        from baocao.storage import warehouse

        try:
            return super().invoke(ctx)
        except sa.exc.DBAPIError as error:
            gone = warehouse.outage(error)
            if gone is None:
                raise
            fail(gone)


@click.group(cls=_Commands)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """baocao: administrative-reform reports from department systems to the central endpoint."""
    _setup_logging(verbose)


@main.command()
@click.option("--report", "report_type", required=True, type=click.Choice([r.value for r in ReportType]))
@click.option("--period", "period_id", required=True, help="Period id: 2026-11, 2026-Q1, 2026-H1, 2026-9M, 2026.")
@click.option("--config", "config_path", metavar="FILE", help="Configuration file.")
@click.option("--dry-run", is_flag=True, help="Everything but the POST; the rendered file is written out.")
def run(report_type: str, period_id: str, config_path: str | None, dry_run: bool) -> None:
    """Run one report for one period: extract, validate, aggregate, check, render, publish."""
    from baocao.run import pipeline

    try:
        config = load_config(config_path)
        check_config(config)
        result = pipeline.run_report(config, report_type, period_id, dry_run=dry_run)
        checked = result.prepared.checked
        total = pipeline.report_summary(config, report_type, period_id, checked.content_hash)
    except BaocaoError as error:
        fail(error)
        return
    print_total(total)
    out.print(f"report version: {checked.content_hash[:12]}")
    out.print(f"payload: {result.payload}")
    out.print(f"Data Docs: {checked.data_docs}")
    if dry_run:
        out.print("[yellow]dry run[/]: nothing was sent")
    else:
        out.print_json(json.dumps(result.receipt, ensure_ascii=False))


@main.command()
@click.option("--report", "report_type", required=True, type=click.Choice([r.value for r in ReportType]))
@click.option("--period", "period_id", required=True, help="Period id of the accepted report to correct.")
@click.option("--reason", required=True, help="Why the accepted version is wrong (sent as CorrectionReason).")
@click.option("--config", "config_path", metavar="FILE", help="Configuration file.")
@click.option("--dry-run", is_flag=True, help="Show the diff and write the file; nothing is frozen or sent.")
@click.option("--no-pull", is_flag=True, help="Aggregate the stored dossiers again without reading the sources.")
def correct(
    report_type: str, period_id: str, reason: str, config_path: str | None, dry_run: bool, no_pull: bool
) -> None:
    """Send version n+1 of an accepted report, superseding its receipt, after showing what changed."""
    from baocao.run import pipeline
    from baocao.transforms import diff

    def show(base: Any, changes: list[diff.Change]) -> None:
        out.print(
            f"{report_type} {period_id}: v{base.version + 1} against the accepted v{base.version} "
            f"(receipt {base.receipt_id}): {len(changes)} cell(s) changed, old → new"
        )
        out.print(diff.describe(changes), markup=False, highlight=False)

    try:
        config = load_config(config_path)
        check_config(config)
        result = pipeline.correct(config, report_type, period_id, reason, dry_run=dry_run, show=show, pull=not no_pull)
    except BaocaoError as error:
        fail(error)
        return
    out.print(f"payload: {result.rendered.path}")
    if dry_run:
        out.print("[yellow]dry run[/]: nothing was sent")
    else:
        out.print_json(json.dumps(result.receipt, ensure_ascii=False))


@main.command()
@click.option("--report", "report_type", type=click.Choice([r.value for r in ReportType]))
@click.option("--period", "period_id")
@click.option("--config", "config_path", metavar="FILE")
def status(report_type: str | None, period_id: str | None, config_path: str | None) -> None:
    """The stored reports (their current versions) and the submission ledger: what was frozen, sent and
    acknowledged, and from which stored version."""
    from baocao.run import leftovers, pipeline
    from baocao.storage import ledger
    from baocao.storage import reports as stored_reports

    try:
        config = load_config(config_path)
        engine = pipeline.engine_for(config)
        stored = stored_reports.listing(engine, report_type, period_id)
        rows = ledger.listing(engine, report_type, period_id)
        left = leftovers.survey(engine, pipeline.staging_dir(config), pipeline.locks_dir(config))
        running = pipeline.runs_in_progress(config)
    except BaocaoError as error:
        fail(error)
        return
    versions = Table(title="Stored reports (current version)")
    for column in ("report", "period", "version", "aggregated (UTC)", "validated (UTC)"):
        versions.add_column(column, overflow="fold")
    for row in stored:
        versions.add_row(
            row["report_type"],
            row["period_id"],
            row["content_hash"][:12],
            f"{row['aggregated_at']:%Y-%m-%d %H:%M}",
            f"{row['validated_at']:%Y-%m-%d %H:%M}" if row["validated_at"] else "no",
        )
    out.print(versions)
    table = Table(title="Submission ledger")
    # Nothing is cut short when the terminal is narrow (or the output a file): long cells wrap instead.
    for column in ("#", "report", "period", "v", "format", "state", "tries", "receipt", "from version", "last error"):
        table.add_column(column, overflow="fold", min_width=8 if column in ("state", "period") else None)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["report_type"],
            row["period_id"],
            str(row["version"]),
            row["format"],
            row["state"],
            str(row["attempts"]),
            row["receipt_id"] or "",
            (row["report_hash"] or "")[:12],
            (row["last_error"] or "")[:80],
        )
    out.print(table)
    for row in rows:
        hint = ledger.what_next(row["state"], row["last_error"])
        if hint:
            out.print(
                escape(
                    f"submission #{row['id']} ({row['report_type']} {row['period_id']}, "
                    f"Idempotency-Key {row['idempotency_key']}) what next: {hint}"
                )
            )
    for run_of, holder in running:
        out.print(f"run in progress: {run_of.replace('-', ' ', 1)} ({holder or 'pid unknown'})")
    _print_leftovers(left)


def _age(seconds: float) -> str:
    whole = int(seconds)
    if whole >= 86400:
        return f"{whole // 86400}d {whole // 3600 % 24}h"
    return f"{whole // 3600}h {whole // 60 % 60:02d}m" if whole >= 3600 else f"{whole // 60}m {whole % 60:02d}s"


def _print_leftovers(left: Any) -> None:
    """Stuck batches and orphan staging files, and what the next run of their source does with each."""
    from baocao.storage import warehouse

    if not left.batches and not left.files:
        out.print("Leftovers: no stuck batch, no orphan staging file")
        return
    now = warehouse.utc_now()
    table = Table(title=f"Leftovers: {len(left.batches)} stuck batch(es), {len(left.files)} orphan staging file(s)")
    for column in ("what", "batch", "source", "age", "next run", "why"):
        table.add_column(column, overflow="fold")
    for batch in left.batches:
        age = _age((now - batch.started_at).total_seconds()) if batch.started_at else "?"
        table.add_row("stuck batch (STAGED)", batch.batch_id, batch.source, age, batch.action.value, batch.reason)
    for file in left.files:
        age = _age(file.age_seconds)
        table.add_row(f"orphan {file.kind} file", file.path.name, "", age, file.action.value, file.reason)
    out.print(table)


@main.command()
@click.option("--pending", is_flag=True, help="Every frozen submission (the backlog an outage left), oldest first.")
@click.option("--submission", "submission_number", type=int, help="One submission, by its ledger number.")
@click.option("--report", "report_type", type=click.Choice([r.value for r in ReportType]), help="Only this report.")
@click.option("--config", "config_path", metavar="FILE")
def publish(pending: bool, submission_number: int | None, report_type: str | None, config_path: str | None) -> None:
    """Send frozen submissions (their frozen bytes and key) and store the receipts; nothing is re-rendered."""
    from baocao.run import pipeline

    if pending == (submission_number is not None):
        raise click.UsageError("give either --pending or --submission N")
    try:
        config = load_config(config_path)
        check_config(config)
        if submission_number is not None:
            receipts = [pipeline.publish(config, submission_number)]
        else:
            receipts = pipeline.publish_pending(config, report_type)
    except BaocaoError as error:
        fail(error)
        return
    table = Table(title="Published")
    for column in ("report", "period", "v", "receipt", "received at"):
        table.add_column(column)
    for receipt in receipts:
        table.add_row(
            str(receipt.get("report_type")),
            str(receipt.get("period")),
            str(receipt.get("version")),
            str(receipt.get("receipt_id")),
            str(receipt.get("received_at")),
        )
    out.print(table)
    out.print(f"{len(receipts)} submission(s) accepted")


@main.command()
@click.option("--report", "report_type", type=click.Choice([r.value for r in ReportType]), help="A stored report.")
@click.option("--period", "period_id", help="The report's period id (with --report).")
@click.option("--quarantine", "batch_id", help="Instead of a report: the quarantine list of this batch.")
@click.option("--format", "file_format", type=click.Choice(["csv", "xlsx"]), default="xlsx", show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Default: <data_dir>/exports/<name>.<format>.")
@click.option("--config", "config_path", metavar="FILE")
def export(
    report_type: str | None,
    period_id: str | None,
    batch_id: str | None,
    file_format: str,
    out_path: str | None,
    config_path: str | None,
) -> None:
    """Write a stored report or a batch's quarantine list as CSV or xlsx (text never becomes a formula)."""
    from sqlalchemy.exc import NoResultFound

    from baocao.core.errors import ConfigurationError
    from baocao.run import pipeline
    from baocao.storage import warehouse
    from baocao.transforms import export as exporter

    if (batch_id is None) == (report_type is None) or (report_type is not None) != (period_id is not None):
        raise click.UsageError("give either --report R --period P, or --quarantine BATCH_ID")
    try:
        config = load_config(config_path)
        if batch_id is not None:
            engine = pipeline.engine_for(config)
            try:
                warehouse.batch_summary(engine, batch_id)
            except NoResultFound:
                raise ConfigurationError(f"no batch {batch_id!r} in the warehouse") from None
            tables = [exporter.quarantine_table(warehouse.quarantined_records(engine, batch_id))]
            name = f"quarantine-{batch_id}"
        else:
            assert report_type is not None and period_id is not None
            exported = pipeline.report_for_export(config, report_type, period_id)
            tables = exporter.report_tables(exported.stored.report.tables)
            name = f"{report_type}-{exported.stored.report.period.id}"
            console.print(f"{report_type} {exported.stored.report.period.id}: {exported.describe()}")
        path = Path(out_path) if out_path else config.data_dir / "exports" / f"{name}.{file_format}"
        rows = exporter.write_tables(tables, path, file_format)
    except BaocaoError as error:
        fail(error)
        return
    out.print(f"wrote {path} ({rows} row(s), {file_format})")


@main.group("config")
def config_group() -> None:
    """The configuration file: check it before a run does."""


@config_group.command("check")
@click.option("--config", "config_path", metavar="FILE", help="Configuration file.")
def config_check(config_path: str | None) -> None:
    """Read and check the configuration as every run does at start: the file (types, ranges, URLs, field
    mappings, secrets in the environment), data_dir writable, the agency registry, the warehouse answering."""
    try:
        config = load_config(config_path)
        check_config(config)
    except BaocaoError as error:
        fail(error)
        return
    out.print(f"configuration ok: {config.path}", markup=False, highlight=False)


@main.group()
def db() -> None:
    """The warehouse's schema: create or upgrade it, show its revision."""


def _shown(url: str) -> str:
    """The warehouse URL without its password."""
    from baocao.storage.warehouse import shown_url

    return shown_url(url)


@db.command("upgrade")
@click.option("--config", "config_path", metavar="FILE", help="Configuration file.")
def db_upgrade(config_path: str | None) -> None:
    """Create the warehouse's schema, or upgrade it to this version's newest revision (a warehouse made
    before the migrations is adopted). Workers do the same at start when the warehouse is behind."""
    from baocao.storage import migrations, warehouse

    try:
        config = load_config(config_path)
        engine = warehouse.open_engine(config.warehouse_url)
        try:
            warehouse.reachable(engine)
            done = migrations.upgrade(engine)
        finally:
            engine.dispose()
    except BaocaoError as error:
        fail(error)
        return
    where = _shown(config.warehouse_url)
    if done.changed:
        out.print(f"warehouse {where}: upgraded from {done.before or 'no revision'} to {done.after}")
    else:
        out.print(f"warehouse {where}: at {done.after} already, nothing to do")


@db.command("current")
@click.option("--config", "config_path", metavar="FILE", help="Configuration file.")
def db_current(config_path: str | None) -> None:
    """The warehouse's schema revision and this version's newest; nothing is changed."""
    from baocao.storage import migrations, warehouse

    try:
        config = load_config(config_path)
        engine = warehouse.open_engine(config.warehouse_url)
        try:
            warehouse.reachable(engine)
            found = migrations.current(engine)
        finally:
            engine.dispose()
    except BaocaoError as error:
        fail(error)
        return
    newest = migrations.head()
    if found == newest:
        state = "up to date"
    elif found is None or migrations.known(found):
        state = "behind: run `baocao db upgrade`"
    else:
        state = "unknown to this version: newer code migrated it"
    out.print(f"warehouse {_shown(config.warehouse_url)}: revision {found or 'none'}, newest {newest} ({state})")


def _add_development_commands() -> None:
    """`demo`, `simulate` and `sandbox` come with the simulators, which a development install has and the
    wheel and the image do not: they are added when that package is there, never imported otherwise."""
    if importlib.util.find_spec("baocao.simulators") is None:
        return
    commands = importlib.import_module("baocao.simulators.commands")
    for command in commands.COMMANDS:
        main.add_command(command)


_add_development_commands()


if __name__ == "__main__":
    main()
