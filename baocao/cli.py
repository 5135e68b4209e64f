"""`baocao`: run a report, look at the ledger, start the simulators, or run the demo."""

from __future__ import annotations

import json
import logging
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from baocao.config import ReportType, load_config
from baocao.errors import BaocaoError, DataQualityError, RetriableError

console = Console(stderr=True)
out = Console()


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    for noisy in ("great_expectations", "urllib3", "alembic", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(error: BaocaoError) -> None:
    kind = (
        "retriable (try again later)"
        if isinstance(error, RetriableError)
        else "data quality (fix the data)"
        if isinstance(error, DataQualityError)
        else "fatal (fix and rerun)"
    )
    console.print(f"[bold red]error[/] [{kind}]: {error}")
    sys.exit(75 if isinstance(error, RetriableError) else 65 if isinstance(error, DataQualityError) else 1)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """baocao: administrative-reform reports from department systems to the central endpoint."""
    _setup_logging(verbose)


@main.command()
@click.option("--report", "report_type", required=True, type=click.Choice([r.value for r in ReportType]))
@click.option("--period", "period_id", required=True, help="Period id: 2026-11, 2026-Q1, 2026-H1, 2026-9M, 2026.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Configuration file.")
@click.option("--dry-run", is_flag=True, help="Everything but the POST; the rendered file is written out.")
def run(report_type: str, period_id: str, config_path: str | None, dry_run: bool) -> None:
    """Run one report for one period: extract, validate, aggregate, check, render, publish."""
    from baocao import pipeline

    try:
        config = load_config(config_path)
        result = pipeline.run_report(config, report_type, period_id, dry_run=dry_run)
        total = pipeline.report_total(config, report_type, period_id)
    except BaocaoError as error:
        _fail(error)
        return
    _print_total(total)
    out.print(f"payload: {result['payload']}")
    out.print(f"Data Docs: {result['checked']['data_docs']}")
    if dry_run:
        out.print("[yellow]dry run[/]: nothing was sent")
    else:
        out.print_json(json.dumps(result["receipt"], ensure_ascii=False))


def _print_total(total: dict[str, Any]) -> None:
    table = Table(title="Report total")
    table.add_column("column")
    table.add_column("value", justify="right")
    for name, value in total.items():
        if name != "completeness":
            table.add_row(name, "—" if value is None else f"{value:,}" if isinstance(value, int) else str(value))
    completeness = total["completeness"]
    table.add_row(
        "agencies expected / reported / missing",
        f"{completeness['expected']} / {completeness['reported']} / {completeness['missing']}",
    )
    out.print(table)


@main.command()
@click.option("--report", "report_type", type=click.Choice([r.value for r in ReportType]))
@click.option("--period", "period_id")
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
def status(report_type: str | None, period_id: str | None, config_path: str | None) -> None:
    """The submission ledger: what was frozen, sent and acknowledged."""
    from baocao import ledger, pipeline

    try:
        config = load_config(config_path)
        rows = ledger.listing(pipeline.engine_for(config), report_type, period_id)
    except BaocaoError as error:
        _fail(error)
        return
    table = Table(title="Submission ledger")
    for column in ("#", "report", "period", "v", "format", "state", "tries", "receipt", "last error"):
        table.add_column(column)
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
            (row["last_error"] or "")[:80],
        )
    out.print(table)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def simulate(args: tuple[str, ...]) -> None:
    """Start the one-stop-shop simulator (options: see `baocao simulate --help`)."""
    from simulators.onestop.server import main as onestop_main

    onestop_main(list(args))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sandbox(args: tuple[str, ...]) -> None:
    """Start the central endpoint's sandbox (options: see `baocao sandbox --help`)."""
    from simulators.central.server import main as central_main

    central_main(list(args))


@main.command()
@click.option("--workdir", type=click.Path(file_okay=False), default="demo-work", show_default=True)
@click.option("--volume", default=20_000, show_default=True, help="Dossiers generated by the simulator.")
@click.option("--format", "fmt", type=click.Choice(["xml", "json"]), default="xml", show_default=True)
def demo(workdir: str, volume: int, fmt: str) -> None:
    """Simulators on loopback, the real Airflow DAG for the last complete D09 month, a published submission."""
    from baocao import demo as demo_env
    from baocao import ledger, pipeline
    from baocao.periods import Regime, last_complete_period

    period = last_complete_period("MONTH", Regime.D09, date.today())
    from transforms.canonical import LOCAL_TIMEZONE

    cut_off = datetime.combine(period.end + timedelta(days=1), time(2, 0), tzinfo=LOCAL_TIMEZONE)
    folder = Path(workdir).resolve()
    console.print(f"demo: period {period}; work folder {folder}")
    try:
        with demo_env.environment(folder, volume=volume, fmt=fmt) as env:
            console.print(f"one-stop-shop simulator {env.onestop_url}; central sandbox {env.central_url}")
            console.print("running the Airflow DAG tthc_results with `airflow dags test` …")
            code = demo_env.airflow_dags_test(
                env, "tthc_results", cut_off, {"period": period.id, "config": str(env.config_path)}
            )
            config = load_config(env.config_path)
            rows = [r for r in ledger.listing(pipeline.engine_for(config), "TTHC_RESULTS", period.id)]
            accepted = [r for r in rows if r["state"] == ledger.State.ACCEPTED]
            if code != 0 or not accepted:
                console.print(f"[bold red]the DAG run failed[/] (exit {code}); log: {folder / 'airflow-run.log'}")
                sys.exit(1)
            submission = ledger.get(pipeline.engine_for(config), accepted[-1]["id"])
            _print_total(pipeline.report_total(config, "TTHC_RESULTS", period.id))
            out.print("[bold green]receipt[/]")
            out.print_json(json.dumps(submission.receipt, ensure_ascii=False))
            out.print(f"Data Docs: {pipeline.suite_runner(config).docs_index}")
            out.print(f"payload: {config.data_dir / 'submissions'}")
            out.print(f"Airflow log: {folder / 'airflow-run.log'}")
    except BaocaoError as error:
        _fail(error)


if __name__ == "__main__":
    main()
