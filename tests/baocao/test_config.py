"""Configuration: one file, secrets by environment variable, clear errors naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from baocao.core.canonical import personal_part
from baocao.core.errors import ConfigurationError
from baocao.core.registry import load_registry
from baocao.core.sources import mapping_problems, url_problem
from baocao.run.config import check_config, load_config
from baocao.simulators import demo


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in (
        (demo.CENTRAL_TOKEN_ENV, "s3cr3t-token"),
        (demo.CLIENT_ID_ENV, "id"),
        (demo.CLIENT_SECRET_ENV, "s3cr3t"),
    ):
        monkeypatch.setenv(name, value)
    path = tmp_path / "baocao.toml"
    demo.write_config(path, onestop_url="http://127.0.0.1:1", central_url="http://127.0.0.1:2/api/v1")
    return path


def test_loads_a_typed_config_and_keeps_secrets_out_of_repr(config_file: Path) -> None:
    config = load_config(config_file)
    assert config.province_code == demo.DEMO_SENDER
    assert config.warehouse_url == f"sqlite:///{config_file.parent / 'var' / 'warehouse.db'}"
    assert config.report("TTHC_RESULTS").sources == ("onestop",)
    assert config.central.token.value == "s3cr3t-token"
    text = repr(config) + str(config.central.token)
    assert "s3cr3t" not in text and demo.CENTRAL_TOKEN_ENV in text


def test_a_missing_secret_names_the_variable(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(demo.CENTRAL_TOKEN_ENV)
    with pytest.raises(ConfigurationError, match=demo.CENTRAL_TOKEN_ENV):
        load_config(config_file)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('format = "xml"', 'format = "pdf"'), "pdf"),
        (('regime = "D09"', 'regime = "LUNAR"'), "LUNAR"),
        (('sources = ["onestop"]', 'sources = ["nowhere"]'), "nowhere"),
        (("[province]", "[provinces]"), "province"),
        (('url = "http', "url = http"), "not valid TOML"),
    ],
)
def test_bad_values_get_a_clear_error(config_file: Path, edit: tuple[str, str], message: str) -> None:
    config_file.write_text(config_file.read_text(encoding="utf-8").replace(*edit, 1), encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_config(config_file)
    assert str(config_file) in str(caught.value)


def test_unknown_report_is_named(config_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="ICT_RANKING"):
        load_config(config_file).report("ICT_RANKING")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("code,name,level\n000.00.01.H99,Sở Tư pháp,PROVINCE\n000.00.01.H99,Again,PROVINCE\n", "twice"),
        ("code,name,level\n0001.H99,Sở Tư pháp,PROVINCE\n", "ddd.dd.dd.Xdd"),
        ("code,name,level\n000.00.01.H99,Sở Tư pháp,CITY\n", "CITY"),
        ("code,name,level\n", "empty"),
    ],
)
def test_registry_errors_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "agencies.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message):
        load_registry(path)


def test_registry_keeps_codes_as_text_and_reads_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "agencies.csv"
    path.write_text("\ufeffcode,name,level\n000.01.02.H99,UBND xã Tà Nung,commune\n", encoding="utf-8")
    registry = load_registry(path)
    assert registry.codes == ["000.01.02.H99"] and registry.agencies[0].level.value == "COMMUNE"


def test_each_source_kind_names_its_missing_keys(config_file: Path) -> None:
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text + '\n[[sources]]\nname = "legacy"\nkind = "sql_legacy"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"kind sql_legacy\): missing key 'url_env'"):
        load_config(config_file)
    config_file.write_text(text + '\n[[sources]]\nname = "x"\nkind = "ftp"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="kind 'ftp' is not one of"):
        load_config(config_file)


def test_a_database_url_is_a_secret(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGACY_DB_URL", "postgresql+psycopg://etl:hunter2@db/motcua")
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(
        text + '\n[[sources]]\nname = "legacy"\nkind = "sql_legacy"\nurl_env = "LEGACY_DB_URL"\n', encoding="utf-8"
    )
    source = load_config(config_file).source("legacy")
    assert source.database_url is not None and source.database_url.value.endswith("/motcua")
    assert "hunter2" not in repr(source)


LEGACY = '\n[[sources]]\nname = "legacy"\nkind = "sql_legacy"\nurl_env = "LEGACY_DB_URL"\n'


def test_a_key_of_another_kind_or_a_misspelt_key_is_refused_by_name(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGACY_DB_URL", "sqlite:///legacy.db")
    text = config_file.read_text(encoding="utf-8")
    for extra, message in (
        ("page_size = 100\n", r"\[\[sources\]\] #2 \(source legacy\): page_size applies to rest_onestop sources"),
        ('tabel = "hoso"\n', r"\(source legacy\): unknown key 'tabel' \(kind sql_legacy takes .*, table,"),
    ):
        config_file.write_text(text + LEGACY + extra, encoding="utf-8")
        with pytest.raises(ConfigurationError, match=message) as caught:
            load_config(config_file)
        assert str(config_file) in str(caught.value) and "\n" not in str(caught.value)
    config_file.write_text(text.replace("[central]\n", "[central]\ntimout_seconds = 5\n"), encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"\[central\]: unknown key 'timout_seconds'"):
        load_config(config_file)
    config_file.write_text(text + LEGACY + "chunk_size = 100\n", encoding="utf-8")
    assert load_config(config_file).source("legacy").chunk_size == 100


def test_a_secret_written_in_the_file_is_refused_without_repeating_it(config_file: Path) -> None:
    text = config_file.read_text(encoding="utf-8")
    legacy = LEGACY.replace('"LEGACY_DB_URL"', '"postgresql+psycopg://etl:hunter2@db/motcua"')
    config_file.write_text(text + legacy, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="url_env must be the name of an environment variable") as caught:
        load_config(config_file)
    assert "hunter2" not in str(caught.value)


def test_two_sources_of_one_name_are_refused(config_file: Path) -> None:
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(
        text + '\n[[sources]]\nname = "onestop"\nkind = "ict_workbook"\npath = "x"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigurationError, match=r"#2 \(source onestop\): name 'onestop' is already used by .* #1"):
        load_config(config_file)


# ---------------------------------------------------------------- the validators (issue 13)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://central.example/api/v1", None),
        ("http://127.0.0.1:8765", None),
        ("http://[::1]:8765/api", None),
        ("central.example/api", "no scheme"),
        ("ftp://central.example", "not scheme 'ftp'"),
        ("http://", "must name a host"),
        ("http://exa mple.org", "without spaces"),
        ("http://host:99999/x", "not a valid URL"),
        ("http://host:port/x", "not a valid URL"),
        ("ht!tp:://::garbage", "http"),
        ("http://host:0/x", "port 0"),
    ],
)
def test_url_problem(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found), found


@pytest.mark.parametrize(
    ("path", "part"),
    [
        ("code", None),
        ("don_vi.ma", None),
        ("applicant.name", "applicant"),
        ("hoso.applicant_info.code", None),
        ("hoso.nguoi_nop.ho_ten", "ho_ten"),
        ("contact.PHONE", "PHONE"),
        ("record.id_number", "id_number"),
    ],
)
def test_every_part_of_a_dotted_path_is_checked_for_personal_data(path: str, part: str | None) -> None:
    assert personal_part(path) == part


def test_mapping_problems_name_the_mapping_and_the_rule() -> None:
    assert mapping_problems({"code": "ma_ho_so", "agency_code": "don_vi.ma"}) == []
    problems = mapping_problems({"field_name": "applicant.name", "feild_code": "x", "status": "a..b"})
    assert any("'feild_code'" in p and "not canonical" in p for p in problems)
    assert any("field_name = 'applicant.name'" in p and "mapping.personal_field" in p for p in problems)
    assert any("status = 'a..b'" in p for p in problems)


def test_canonical_record_refuses_a_nested_personal_path_too() -> None:
    from baocao.transforms.canonical import canonical_record

    with pytest.raises(ConfigurationError, match="personal field"):
        canonical_record({"code": "X"}, {"field_name": "hoso.applicant.name"}, {})


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("timeout_seconds = 20", 'timeout_seconds = "abc"', r"\[central\]: timeout_seconds must be a number"),
        ("timeout_seconds = 20", "timeout_seconds = nan", r"timeout_seconds must be a finite number"),
        ("timeout_seconds = 20", "timeout_seconds = 4000", r"timeout_seconds must be at most 3600"),
        ("max_attempts = 6", "max_attempts = 0", r"max_attempts must be at least 1"),
        ("max_attempts = 6", "max_attempts = 101", r"max_attempts must be at most 100"),
        ("max_attempts = 6", 'max_attempts = "6"', r"max_attempts must be a whole number"),
        ("page_size = 500", 'page_size = "lots"', r"\(source onestop\): page_size must be a whole number"),
        ("page_size = 500", "page_size = -1", r"page_size must be at least 1"),
        ("overlap_minutes = 60", "overlap_minutes = 100000", r"overlap_minutes must be at most"),
        ('url = "http://127.0.0.1:2/api/v1"', 'url = "not a url"', r"\[central\]: url must be an http"),
        ('base_url = "http://127.0.0.1:1"', 'base_url = "//127.0.0.1:1"', r"\(source onestop\): base_url must be"),
    ],
)
def test_types_ranges_and_urls_are_refused_at_load(config_file: Path, old: str, new: str, message: str) -> None:
    text = config_file.read_text(encoding="utf-8")
    if old not in text:  # the demo's file leaves some keys at their defaults: add them where they belong
        anchor = (
            "[central]\n" if old.split(" ")[0] in ("timeout_seconds", "max_attempts") else 'kind = "rest_onestop"\n'
        )
        config_file.write_text(text.replace(anchor, anchor + old + "\n", 1), encoding="utf-8")
    _edit(config_file, old, new)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_config(config_file)
    assert str(config_file) in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_that_is_not_utf8_or_is_a_folder(config_file: Path) -> None:
    config_file.write_bytes(config_file.read_bytes().replace(b"[central]", b"[central]\n# caf\xe9", 1))
    with pytest.raises(ConfigurationError, match=r"not UTF-8 text \(line \d+, byte \d+"):
        load_config(config_file)
    with pytest.raises(ConfigurationError, match="is a folder, not a file"):
        load_config(config_file.parent)


def test_warehouse_url_from_the_environment(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = config_file.read_text(encoding="utf-8")
    _edit(config_file, 'url = "sqlite:///var/warehouse.db"', 'url_env = "WAREHOUSE_URL"')
    with pytest.raises(ConfigurationError, match=r"\[warehouse\]: url_env names the environment variable WAREHOUSE"):
        load_config(config_file)
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql+psycopg://etl:hunter2@db/warehouse")
    config = load_config(config_file)
    assert config.warehouse_url == "postgresql+psycopg://etl:hunter2@db/warehouse"
    assert "hunter2" not in repr(config)
    monkeypatch.setenv("WAREHOUSE_URL", "mssql+pyodbc://etl:hunter2@db/warehouse")
    with pytest.raises(
        ConfigurationError, match=r"url_env \(\$WAREHOUSE_URL\) .*dialect 'mssql' is not supported"
    ) as e:
        load_config(config_file)
    assert "hunter2" not in str(e.value)
    config_file.write_text(text, encoding="utf-8")
    _edit(config_file, 'url = "sqlite:///var/warehouse.db"', 'url = "sqlite:///w.db"\nurl_env = "WAREHOUSE_URL"')
    with pytest.raises(ConfigurationError, match="give url or url_env, not both"):
        load_config(config_file)


def test_a_legacy_database_variable_must_hold_a_url(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGACY_DB_URL", "hunter2")
    config_file.write_text(config_file.read_text(encoding="utf-8") + LEGACY, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"\$LEGACY_DB_URL does not hold a database URL") as caught:
        load_config(config_file)
    assert "hunter2" not in str(caught.value)


def test_check_config_writes_data_dir_and_reaches_the_warehouse(config_file: Path) -> None:
    config = load_config(config_file)
    check_config(config)
    assert config.data_dir.is_dir() and not list(config.data_dir.glob(".baocao-check-*"))
    _edit(config_file, 'data_dir = "var"', 'data_dir = "/proc/baocao-var"')
    with pytest.raises(ConfigurationError, match=r"\[paths\]: data_dir /proc/baocao-var: cannot be written"):
        check_config(load_config(config_file))


def test_the_warehouse_refusing_is_fatal_and_not_answering_retriable(postgres_admin_url: str) -> None:
    import sqlalchemy as sa

    from baocao.core.errors import FatalError, RetriableError
    from baocao.storage import warehouse

    admin = sa.engine.make_url(postgres_admin_url)
    down = warehouse.open_engine("postgresql+psycopg://etl:hunter2@127.0.0.1:9/warehouse")
    with pytest.raises(RetriableError, match=r"etl:\*\*\*@127.0.0.1:9/warehouse: cannot connect") as caught:
        warehouse.reachable(down)
    assert "hunter2" not in str(caught.value)
    refused = warehouse.open_engine(
        admin.set(database="no_such_db_baocao", password="hunter2").render_as_string(hide_password=False)
    )
    with pytest.raises(FatalError, match="refused the connection .*no_such_db_baocao") as caught:
        warehouse.reachable(refused)
    assert not isinstance(caught.value, RetriableError) and "hunter2" not in str(caught.value)
