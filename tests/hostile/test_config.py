"""A hostile configuration: every way the file, its secrets or what it names can be wrong is one line on
stderr with its exit code, before anything is pulled or frozen, and a password is never shown.

Each case is a real `baocao` process (`config check`, or `run` where the point is that a run stops
before pulling). The broken files are written by hand from `write_config`'s complete one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.delivery.support import run_cli, write_config
from tests.hostile.support import one_line_failure

pytestmark = pytest.mark.hostile

CENTRAL = "http://127.0.0.1:9/api/v1"  # nothing listens: no case may get as far as sending
CANARY = "Canary-Pa55word-7f3a"  # a warehouse password that must never be shown
WAREHOUSE_ENV = "BAOCAO_TEST_WAREHOUSE_URL"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path / "world", CENTRAL)


def edited(path: Path, old: str, new: str) -> Path:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def failing_check(path: Path | str, kind: str = "fatal", env: dict[str, str] | None = None) -> tuple[str, str]:
    result = run_cli("config", "check", "--config", str(path), env=env, timeout=120)
    return one_line_failure(result, kind), result.stdout + result.stderr


def test_a_sound_configuration_is_ok(config_path: Path) -> None:
    result = run_cli("config", "check", "--config", str(config_path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration ok"), result.stdout
    assert (config_path.parent / "var").is_dir()  # data_dir was tried by writing to it


# ---------------------------------------------------------------- the file itself


def test_a_file_that_is_not_utf8(config_path: Path) -> None:
    # A province name saved in a Windows code page: 0xFA is "ú" in cp1252, no UTF-8 at all.
    config_path.write_bytes(config_path.read_bytes().replace(b'name = "', b'name = "Ph\xfa ', 1))
    line, _ = failing_check(config_path)
    assert str(config_path) in line and "not UTF-8" in line and "line 3" in line


def test_a_toml_syntax_error_names_line_and_column(config_path: Path) -> None:
    edited(config_path, "max_attempts = 4", "max_attempts 4")
    line, _ = failing_check(config_path)
    assert str(config_path) in line and "not valid TOML" in line
    assert "line 19" in line and "column" in line


@pytest.mark.parametrize("command", [["config", "check"], ["run", "--report", "TTHC_RESULTS", "--period", "2026-11"]])
def test_config_naming_a_folder_is_fatal_not_usage(tmp_path: Path, command: list[str]) -> None:
    result = run_cli(*command, "--config", str(tmp_path), timeout=120)
    line = one_line_failure(result, "fatal")
    assert str(tmp_path) in line and "is a folder" in line


def test_config_naming_a_missing_file(tmp_path: Path) -> None:
    line, _ = failing_check(tmp_path / "nowhere.toml")
    assert "nowhere.toml" in line and "not found" in line


# ---------------------------------------------------------------- types and ranges


@pytest.mark.parametrize(
    ("old", "new", "table", "named"),
    [
        ("timeout_seconds = 5", 'timeout_seconds = "abc"', "[central]", "timeout_seconds must be a number"),
        ("timeout_seconds = 5", "timeout_seconds = -1", "[central]", "timeout_seconds must be more than 0"),
        ("timeout_seconds = 5", "timeout_seconds = 0", "[central]", "timeout_seconds must be more than 0"),
        ("timeout_seconds = 5", "timeout_seconds = inf", "[central]", "timeout_seconds must be"),
        ("timeout_seconds = 5", "timeout_seconds = 86400000", "[central]", "timeout_seconds must be at most"),
        ("max_attempts = 4", "max_attempts = 0", "[central]", "max_attempts must be at least 1"),
        ("max_attempts = 4", "max_attempts = true", "[central]", "max_attempts must be a whole number"),
        ("backoff_base_seconds = 0.05", "backoff_base_seconds = -0.5", "[central]", "backoff_base_seconds"),
        ('client_id_env = "', 'page_size = "lots"\nclient_id_env = "', "(source onestop)", "page_size must be a whole"),
        ('client_id_env = "', 'page_size = 0\nclient_id_env = "', "(source onestop)", "page_size must be at least 1"),
        ('client_id_env = "', 'page_size = 5000\nclient_id_env = "', "(source onestop)", "page_size must be at most"),
        ('client_id_env = "', 'overlap_minutes = -5\nclient_id_env = "', "(source onestop)", "overlap_minutes"),
    ],
)
def test_types_and_ranges(config_path: Path, old: str, new: str, table: str, named: str) -> None:
    line, _ = failing_check(edited(config_path, old, new))
    assert str(config_path) in line and table in line and named in line, line


def test_unknown_warehouse_dialect(config_path: Path) -> None:
    edited(config_path, 'url = "sqlite:///var/warehouse.db"', f'url = "oracle2://etl:{CANARY}@db/warehouse"')
    line, shown = failing_check(config_path)
    assert "[warehouse]" in line and "oracle2" in line and "not supported" in line
    assert CANARY not in shown


def test_warehouse_dialect_without_its_driver(config_path: Path) -> None:
    edited(config_path, 'url = "sqlite:///var/warehouse.db"', f'url = "postgresql+nodriver://etl:{CANARY}@db/w"')
    line, shown = failing_check(config_path)
    assert "[warehouse]" in line and "no such driver" in line
    assert CANARY not in shown


# ---------------------------------------------------------------- data_dir


def test_data_dir_naming_a_file(config_path: Path) -> None:
    edited(config_path, 'data_dir = "var"', 'data_dir = "agencies.csv"')
    line, _ = failing_check(config_path)
    assert "[paths]" in line and "data_dir" in line and "is a file, not a folder" in line


def test_data_dir_under_a_file(config_path: Path) -> None:
    edited(config_path, 'data_dir = "var"', 'data_dir = "agencies.csv/var"')
    edited(config_path, 'url = "sqlite:///var/warehouse.db"', 'url = "sqlite:///warehouse.db"')
    line, _ = failing_check(config_path)
    assert "data_dir" in line and "is a file, not a folder" in line


def test_data_dir_that_cannot_be_written(config_path: Path) -> None:
    # /proc refuses new files even to root (the tests may run as root, for whom permission bits do not count).
    edited(config_path, 'data_dir = "var"', 'data_dir = "/proc/baocao-var"')
    line, _ = failing_check(config_path)
    assert "[paths]" in line and "/proc/baocao-var" in line and "cannot be written" in line


# ---------------------------------------------------------------- URLs, checked when the file is read


def test_a_garbage_central_url_stops_a_run_before_anything_is_pulled(config_path: Path) -> None:
    edited(config_path, f'url = "{CENTRAL}"', 'url = "ht!tp:://::garbage"')
    result = run_cli("run", "--report", "TTHC_RESULTS", "--period", "2026-11", "--config", str(config_path))
    line = one_line_failure(result, "fatal")
    assert "[central]: url must be an http:// or https:// URL" in line
    assert "token request" not in result.stderr  # the source was never asked
    assert not (config_path.parent / "var" / "submissions").exists()  # nothing was rendered or frozen


@pytest.mark.parametrize("garbage", ["not a url", "ftp://central.example/api", "http://", "http://host:99999/x"])
def test_a_garbage_central_url(config_path: Path, garbage: str) -> None:
    line, _ = failing_check(edited(config_path, f'url = "{CENTRAL}"', f'url = "{garbage}"'))
    assert "[central]: url " in line


def test_a_garbage_source_url(config_path: Path) -> None:
    edited(config_path, 'base_url = "http://127.0.0.1:9"', 'base_url = "127.0.0.1:9:x"')
    line, _ = failing_check(config_path)
    assert "(source onestop)" in line and "base_url" in line


# ---------------------------------------------------------------- field mappings


@pytest.mark.parametrize(
    ("mapping", "rule"),
    [
        ('field_name = "applicant.name"', "personal field 'applicant'"),
        ('field_name = "hoso.nguoi_nop.ho_ten"', "personal field 'ho_ten'"),
        ('procedure_code = "contact.Phone"', "personal field 'Phone'"),
    ],
)
def test_a_mapping_that_feeds_personal_data_is_refused_with_no_record_pulled(
    config_path: Path, mapping: str, rule: str
) -> None:
    edited(config_path, 'agency_code = "agency_code"', f'agency_code = "agency_code"\n{mapping}')
    # `run`, with a source that has nothing to pull (nothing listens): refused when the file is read.
    result = run_cli("run", "--report", "TTHC_RESULTS", "--period", "2026-11", "--config", str(config_path))
    line = one_line_failure(result, "fatal")
    assert "(source onestop)" in line and "fields" in line and mapping.split(" = ")[1].strip('"') in line
    assert rule in line and "mapping.personal_field" in line
    assert "token request" not in result.stderr  # the source was never asked


def test_a_mapping_into_a_column_that_is_not_canonical(config_path: Path) -> None:
    edited(config_path, 'agency_code = "agency_code"', 'agency_code = "agency_code"\nfeild_name = "linh_vuc"')
    line, _ = failing_check(config_path)
    assert "(source onestop)" in line and "'feild_name'" in line and "not canonical" in line


# ---------------------------------------------------------------- the warehouse URL from the environment


def test_warehouse_url_env_names_a_missing_variable(config_path: Path) -> None:
    edited(config_path, 'url = "sqlite:///var/warehouse.db"', f'url_env = "{WAREHOUSE_ENV}"')
    line, _ = failing_check(config_path, env={WAREHOUSE_ENV: ""})
    assert "[warehouse]" in line and WAREHOUSE_ENV in line and "not set" in line


def test_warehouse_url_env_is_read(config_path: Path) -> None:
    edited(config_path, 'url = "sqlite:///var/warehouse.db"', f'url_env = "{WAREHOUSE_ENV}"')
    database = config_path.parent / "elsewhere" / "warehouse.db"
    result = run_cli("config", "check", "--config", str(config_path), env={WAREHOUSE_ENV: f"sqlite:///{database}"})
    assert result.returncode == 0, result.stderr
    assert database.is_file()  # the warehouse named by the variable was the one opened


# ---------------------------------------------------------------- PostgreSQL that is down or refuses


@pytest.fixture
def postgres(postgres_admin_url: str) -> Iterator[sa.URL]:
    yield sa.engine.make_url(postgres_admin_url)


def _from_environment(config_path: Path) -> Path:
    # The URL comes from the environment, as production sets it; the canary is its password.
    return edited(config_path, 'url = "sqlite:///var/warehouse.db"', f'url_env = "{WAREHOUSE_ENV}"')


def test_a_postgresql_warehouse_with_nothing_listening_is_retriable(config_path: Path) -> None:
    url = f"postgresql+psycopg://etl:{CANARY}@127.0.0.1:9/warehouse"
    line, shown = failing_check(_from_environment(config_path), "retriable", env={WAREHOUSE_ENV: url})
    assert "warehouse postgresql+psycopg://etl:***@127.0.0.1:9/warehouse" in line and "cannot connect" in line
    assert CANARY not in shown


def test_a_down_warehouse_stops_a_run_retriable(config_path: Path) -> None:
    url = f"postgresql+psycopg://etl:{CANARY}@127.0.0.1:9/warehouse"
    result = run_cli(
        "run", "--report", "TTHC_RESULTS", "--period", "2026-11", "--config", str(_from_environment(config_path)),
        env={WAREHOUSE_ENV: url},
    )  # fmt: skip
    line = one_line_failure(result, "retriable")
    assert "warehouse" in line and CANARY not in result.stdout + result.stderr
    assert "token request" not in result.stderr  # the source was never asked


@pytest.mark.parametrize("wrong", ["role", "database"])
def test_a_postgresql_warehouse_that_refuses_is_fatal(config_path: Path, postgres: sa.URL, wrong: str) -> None:
    refused = (
        postgres.set(username="no_such_role_baocao", password=CANARY)
        if wrong == "role"
        else postgres.set(password=CANARY, database="no_such_database_baocao")
    )
    url = refused.render_as_string(hide_password=False)
    line, shown = failing_check(_from_environment(config_path), "fatal", env={WAREHOUSE_ENV: url})
    assert "refused" in line and ("no_such_role_baocao" if wrong == "role" else "no_such_database_baocao") in line
    assert CANARY not in shown


def test_a_password_in_the_file_is_not_shown_either(config_path: Path) -> None:
    edited(
        config_path, 'url = "sqlite:///var/warehouse.db"', f'url = "postgresql+psycopg://etl:{CANARY}@127.0.0.1:9/w"'
    )
    line, shown = failing_check(config_path, "retriable")
    assert "etl:***@" in line and CANARY not in shown


def test_secret_canaries_in_a_sound_check(config_path: Path, postgres: sa.URL) -> None:
    """A sound PostgreSQL warehouse, its password a canary: `config check` passes and shows none of it."""
    url = postgres.set(password=CANARY).render_as_string(hide_password=False)
    result = run_cli("config", "check", "--config", str(_from_environment(config_path)), env={WAREHOUSE_ENV: url})
    assert result.returncode == 0, result.stderr
    assert CANARY not in result.stdout + result.stderr


# ---------------------------------------------------------------- the DAG reads the configuration the same way


def test_a_bad_configuration_fails_the_dags_first_task_with_one_line(config_path: Path) -> None:
    """`airflow dags test` with a mapping that would read personal data: the first tasks fail at once
    (not retried) with the same line the CLI prints, and nothing is pulled."""
    from datetime import date

    from baocao.simulators import demo
    from tests.delivery.support import SECRETS_ENV

    edited(config_path, 'agency_code = "agency_code"', 'agency_code = "agency_code"\nfield_name = "applicant.name"')
    env = demo.Environment(workdir=config_path.parent, secrets_env=dict(SECRETS_ENV))
    env.config_path = config_path
    code = demo.airflow_dags_test(env, "tthc_results", date(2026, 12, 1), {"config": str(config_path)})
    log = (env.workdir / "airflow-run.log").read_text(encoding="utf-8")
    assert code != 0
    failed = [line for line in log.splitlines() if "AirflowFailException" in line]
    assert failed, log[-3000:]
    # The first tasks (choose_period, list_sources) fail; no extract task ever starts.
    assert "task_id=extract" not in log and "task_id=publish map_index=-1" not in log
    assert "field_name = 'applicant.name' reads personal field 'applicant'" in log
    assert "up_for_retry" not in log and "token request" not in log
