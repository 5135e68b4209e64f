"""Configuration: one file, secrets by environment variable, clear errors naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from baocao.core.errors import ConfigurationError
from baocao.core.registry import load_registry
from baocao.run.config import load_config
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
