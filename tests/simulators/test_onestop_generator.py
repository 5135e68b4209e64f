"""The one-stop-shop simulator's data generator: deterministic, realistic, consistent histories."""

from __future__ import annotations

import csv
import re
import unicodedata
from datetime import date, timedelta
from pathlib import Path

import pytest

from baocao.simulators.onestop.expected_results import tthc_results_total
from baocao.simulators.onestop.generator import Dataset, generate, local_instant, write_registry_csv
from baocao.simulators.onestop.records import LOCAL_TIMEZONE, Channel, Level, OnlineType, Status

PERIOD_START = date(2026, 1, 15)
PERIOD_END = date(2026, 5, 14)
VOLUME = 3_000

AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
FIELD_CODE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PROCEDURE_CODE = re.compile(r"^[12]\.\d{6}$")
DOSSIER_CODE = re.compile(r"^H99\.\d{2}(\.\d{2})?-(\d{6})-\d{4,}$")
FINISHED = {Status.RESOLVED, Status.RETURNED, Status.WITHDRAWN}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(seed=11, volume=VOLUME, start=PERIOD_START, end=PERIOD_END)


def is_nfc(text: str) -> bool:
    return unicodedata.normalize("NFC", text) == text


def test_same_seed_same_data_and_another_seed_other_data() -> None:
    first = generate(seed=5, volume=400, start=PERIOD_START, end=PERIOD_END)
    again = generate(seed=5, volume=400, start=PERIOD_START, end=PERIOD_END)
    other = generate(seed=6, volume=400, start=PERIOD_START, end=PERIOD_END)
    assert first == again
    assert [history.applicant for history in first.dossiers] != [history.applicant for history in other.dossiers]
    assert [history.received_at for history in first.dossiers] != [history.received_at for history in other.dossiers]


def test_agencies_are_departments_and_communes_with_electronic_codes(dataset: Dataset) -> None:
    agencies = dataset.agencies
    departments = [agency for agency in agencies if agency.level is Level.PROVINCE]
    communes = [agency for agency in agencies if agency.level is Level.COMMUNE]
    assert len(agencies) == 300
    assert 20 <= len(departments) <= 25
    assert len({agency.code for agency in agencies}) == len(agencies)
    assert all(AGENCY_CODE.match(agency.code) for agency in agencies)
    assert all(re.match(r"^000\.00\.\d{2}\.H99$", agency.code) for agency in departments)
    assert all(re.match(r"^000\.(0[1-9]|[1-9]\d)\.\d{2}\.H99$", agency.code) for agency in communes)
    assert all(is_nfc(agency.name) for agency in agencies)
    assert departments[0].name == "Sở Tư pháp"
    assert all(agency.name.startswith(("UBND xã ", "UBND phường ", "UBND thị trấn ")) for agency in communes)
    assert len({agency.name for agency in agencies}) == len(agencies)


def test_province_suffix_is_a_parameter() -> None:
    small = generate(seed=1, volume=50, start=PERIOD_START, end=PERIOD_END, province_suffix="H56")
    assert all(agency.code.endswith(".H56") for agency in small.agencies)
    assert all(history.code.startswith("H56.") for history in small.dossiers)


def test_fields_and_procedures(dataset: Dataset) -> None:
    assert 55 <= len(dataset.fields) <= 75
    assert all(FIELD_CODE.match(item.code) and item.code.startswith("LV-") for item in dataset.fields)
    assert all(is_nfc(item.name) for item in dataset.fields)
    assert {"Đất đai", "Hộ tịch", "Chứng thực"} <= {item.name for item in dataset.fields}
    field_codes = {item.code for item in dataset.fields}
    agency_codes = {agency.code for agency in dataset.agencies}
    procedures = dataset.procedures
    assert len({(item.code, item.agency_code) for item in procedures}) == len(procedures)
    assert all(PROCEDURE_CODE.match(item.code) for item in procedures)
    assert all(item.field_code in field_codes and item.agency_code in agency_codes for item in procedures)
    assert {item.online_type for item in procedures} == set(OnlineType)
    assert any(item.time_limit_days is None for item in procedures)
    # Online payment needs a fee and an online service.
    assert all(
        item.fee_required and item.online_type is not OnlineType.NONE for item in procedures if item.online_payment
    )
    assert {item.agency_code for item in procedures} == agency_codes


def test_dossier_codes_are_unique_and_carry_the_reception_day(dataset: Dataset) -> None:
    histories = dataset.dossiers
    assert len(histories) == VOLUME
    assert len({history.code for history in histories}) == VOLUME
    for history in histories:
        match = DOSSIER_CODE.match(history.code)
        assert match, history.code
        assert match.group(2) == history.received_at.astimezone(LOCAL_TIMEZONE).strftime("%y%m%d")


def test_every_status_channel_and_quirk_of_the_mix_occurs(dataset: Dataset) -> None:
    final = dataset.current_dossiers()
    assert {dossier.status for dossier in final} == set(Status)
    assert {dossier.channel for dossier in final} == set(Channel)
    assert any(dossier.deleted for dossier in final)
    assert any(dossier.due_at is None for dossier in final)
    assert any(dossier.rating is not None for dossier in final)
    assert any(dossier.paid_online for dossier in final)
    assert any(dossier.result_electronic for dossier in final)


def test_histories_are_consistent(dataset: Dataset) -> None:
    procedures = {(item.code, item.agency_code): item for item in dataset.procedures}
    for history in dataset.dossiers:
        states = history.states
        assert states[0].status is Status.RECEIVED and states[0].updated_at == history.received_at
        assert all(earlier.updated_at < later.updated_at for earlier, later in zip(states, states[1:], strict=False))
        assert not any(state.deleted for state in states[:-1])
        procedure = procedures[(history.procedure_code, history.agency_code)]
        assert history.field_code == procedure.field_code
        assert (history.due_at is None) == (procedure.time_limit_days is None)
        if history.channel is Channel.ONLINE:
            assert procedure.online_type is not OnlineType.NONE
        if history.due_at is not None:
            assert history.received_at <= history.due_at <= history.received_at + timedelta(days=730)
        for state in states:
            assert state.updated_at.utcoffset() == timedelta(hours=7)
            if state.status in FINISHED:
                assert state.finished_at is not None and state.finished_at >= history.received_at
            elif state.status is not Status.CANCELLED:
                assert state.finished_at is None
            assert state.rating is None or 1 <= state.rating <= 5
            assert not state.paid_online or history.fee_required


def test_applicants_look_real(dataset: Dataset) -> None:
    for history in dataset.dossiers:
        applicant = history.applicant
        assert re.match(r"^\d{12}$", applicant.id_number)
        assert re.match(r"^0\d{9}$", applicant.phone)
        assert len(applicant.name.split()) == 3 and is_nfc(applicant.name)
        assert applicant.address.endswith("tỉnh Lâm Đồng")


def test_state_as_of_a_time(dataset: Dataset) -> None:
    moment = local_instant(PERIOD_START + timedelta(days=30), 12)
    then = dataset.current_dossiers(moment)
    assert 0 < len(then) < len(dataset.dossiers)
    assert all(dossier.updated_at <= moment for dossier in then)
    latest = {dossier.code: dossier for dossier in dataset.current_dossiers()}
    changed = [dossier for dossier in then if latest[dossier.code].updated_at > moment]
    assert changed, "some dossiers change after the moment"
    assert dataset.current_dossiers(dataset.horizon) == dataset.current_dossiers()


def test_about_98_percent_of_resolved_dossiers_on_time(dataset: Dataset) -> None:
    totals = tthc_results_total(dataset.current_dossiers(), PERIOD_START, PERIOD_END)
    assert totals["on_time_rate"] is not None
    assert 97.5 <= float(totals["on_time_rate"]) <= 99.5
    received, resolved, in_progress = (
        int(totals[name] or 0) for name in ("received_total", "resolved_total", "in_progress_total")
    )
    assert received == resolved + in_progress
    assert 0.9 * VOLUME <= received <= VOLUME


def test_registry_csv(dataset: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "agencies.csv"
    write_registry_csv(dataset, path)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["code", "name", "level"]
    assert rows[1] == ["000.00.01.H99", "Sở Tư pháp", "PROVINCE"]
    assert len(rows) == 301
    assert {row[2] for row in rows[1:]} == {"PROVINCE", "COMMUNE"}
