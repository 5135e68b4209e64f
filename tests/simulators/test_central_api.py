"""Central sandbox over real HTTP on loopback: transport, idempotency, versions, read-back, faults."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests

from baocao.simulators.central import RunningSandbox, start_in_thread
from tests.simulators.central_support import (
    JSON,
    OTHER_TOKEN,
    SENDER,
    TOKEN,
    XML,
    error_codes,
    error_paths,
    example,
    get,
    post,
    settings_for,
    to_bytes,
    tthc_document,
    with_changes,
)

MIB = 1024 * 1024


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with start_in_thread(settings_for(f"sqlite:///{tmp_path / 'central.sqlite3'}")) as running:
        yield running


def _assert_error_shape(response: requests.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "errors"}
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    for error in body["errors"]:
        assert set(error) == {"code", "path", "message"}
    return dict(body)


def _ict_version_1() -> bytes:
    # The ICT example is a correction (version 2); its version 1 is the same report without that.
    text = example("ict-ranking.xml").decode("utf-8")
    text = text.replace("<Version>2</Version>", "<Version>1</Version>")
    text = re.sub(r"\s*<Supersedes>.*?</Supersedes>\s*<CorrectionReason>.*?</CorrectionReason>", "", text)
    return text.encode("utf-8")


# ---------------------------------------------------------------- the examples


def test_tthc_xml_example_is_accepted_with_a_complete_receipt(sandbox: RunningSandbox) -> None:
    body = example("tthc-results.xml")
    response = post(sandbox.base_url, body, "tthc-2026-11-v1", XML)
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert set(receipt) == {
        "receipt_id", "submission_id", "sender", "report_type", "period", "version", "status",
        "received_at", "sha256", "supersedes", "duplicate",
    }  # fmt: skip
    assert receipt["submission_id"] == "6f1c2a9e-2b7d-4f0e-9a51-0c1d2e3f4a5b"
    assert (receipt["sender"], receipt["report_type"], receipt["period"], receipt["version"]) == (
        SENDER, "TTHC_RESULTS", "2026-11", 1,
    )  # fmt: skip
    assert receipt["status"] == "accepted"
    assert receipt["sha256"] == hashlib.sha256(body).hexdigest()
    assert receipt["supersedes"] is None and receipt["duplicate"] is False
    assert datetime.fromisoformat(receipt["received_at"].replace("Z", "+00:00")).tzinfo is not None
    location = response.headers["Location"]
    assert location.endswith(f"/submissions/{receipt['receipt_id']}")
    read_back = requests.get(sandbox.root_url + location, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert read_back.status_code == 200
    assert read_back.json() == receipt


def test_tthc_json_example_is_accepted_and_the_xml_form_is_the_same_content(sandbox: RunningSandbox) -> None:
    first = post(sandbox.base_url, example("tthc-results.json"), "json-form", JSON)
    assert first.status_code == 201, first.text
    # Same report in the other format under another key: identical content, nothing stored twice.
    second = post(sandbox.base_url, example("tthc-results.xml"), "xml-form", XML)
    assert second.status_code == 200, second.text
    assert second.json() == {**first.json(), "duplicate": True}
    listed = get(sandbox.base_url, "/submissions", report_type="TTHC_RESULTS", period="2026-11").json()
    assert [item["receipt_id"] for item in listed] == [first.json()["receipt_id"]]


def test_comments_and_an_enveloped_signature_element_do_not_disturb_reading(sandbox: RunningSandbox) -> None:
    text = example("tthc-results.xml").decode("utf-8")
    text = text.replace("<Body>", "<Body><!-- generated -->").replace(
        "</Body>", '</Body><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>'
    )
    assert post(sandbox.base_url, text.encode("utf-8"), "commented", XML).status_code == 201


def test_ict_example_is_accepted_as_the_correction_of_its_version_1(sandbox: RunningSandbox) -> None:
    first = post(sandbox.base_url, _ict_version_1(), "ict-2025-v1", XML)
    assert first.status_code == 201, first.text
    v1 = first.json()["receipt_id"]
    correction = example("ict-ranking.xml").replace(b"rcpt-01J9Z8", v1.encode())
    second = post(sandbox.base_url, correction, "ict-2025-v2", XML)
    assert second.status_code == 201, second.text
    assert second.json()["supersedes"] == v1 and second.json()["version"] == 2
    listed = get(sandbox.base_url, "/submissions", report_type="ICT_RANKING", period="2025").json()
    assert [(item["version"], item["receipt_id"]) for item in listed] == [(2, second.json()["receipt_id"]), (1, v1)]


# ---------------------------------------------------------------- idempotency table


def test_same_key_same_body_replays_the_stored_receipt(sandbox: RunningSandbox) -> None:
    body = example("tthc-results.json")
    first = post(sandbox.base_url, body, "replay-me", JSON)
    again = post(sandbox.base_url, body, "replay-me", JSON)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert "Idempotent-Replayed" not in first.headers


def test_same_key_replays_a_stored_error_answer(sandbox: RunningSandbox) -> None:
    body = to_bytes(with_changes(tthc_document(), (("body", "tthc_results", "total", "received_total"), 151)))
    first = post(sandbox.base_url, body, "bad-total", JSON)
    _assert_error_shape(first, 422, "RULE_FAILED")
    again = post(sandbox.base_url, body, "bad-total", JSON)
    assert again.status_code == 422 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"


def test_same_key_with_a_different_body_is_refused(sandbox: RunningSandbox) -> None:
    assert post(sandbox.base_url, example("tthc-results.json"), "one-key", JSON).status_code == 201
    other = to_bytes(with_changes(tthc_document(), (("header", "submission_id"), "another")))
    _assert_error_shape(post(sandbox.base_url, other, "one-key", JSON), 422, "IDEMPOTENCY_KEY_REUSED")


def test_idempotency_keys_belong_to_their_sender(sandbox: RunningSandbox) -> None:
    assert post(sandbox.base_url, example("tthc-results.json"), "shared-key", JSON).status_code == 201
    # Another sender may pick the same key; its request is its own (here refused as a foreign envelope).
    response = post(sandbox.base_url, b"{}", "shared-key", JSON, token=OTHER_TOKEN)
    assert response.status_code == 422 and response.json()["error"] == "SCHEMA_INVALID"


@pytest.mark.parametrize(
    ("key", "code"),
    [(None, "IDEMPOTENCY_KEY_MISSING"), ("", "IDEMPOTENCY_KEY_INVALID"), ("has space", "IDEMPOTENCY_KEY_INVALID"),
     ("k" * 129, "IDEMPOTENCY_KEY_INVALID"), ("ключ", "IDEMPOTENCY_KEY_INVALID")],
)  # fmt: skip
def test_missing_or_invalid_idempotency_key_is_400(sandbox: RunningSandbox, key: str | None, code: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": JSON}
    if key is not None:
        headers["Idempotency-Key"] = key
    connection = http.client.HTTPConnection(sandbox.root_url.removeprefix("http://"), timeout=10)
    # http.client sends the header bytes as given (requests would refuse some of these values).
    connection.request("POST", "/api/v1/submissions", body=b"{}", headers={k: v.encode() for k, v in headers.items()})
    response = connection.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["error"] == code
    connection.close()


def test_longest_allowed_key_with_every_allowed_character_is_accepted(sandbox: RunningSandbox) -> None:
    key = ("Az09._:-" * 16)[:128]
    assert post(sandbox.base_url, example("tthc-results.json"), key, JSON).status_code == 201


# ---------------------------------------------------------------- authentication and transport


def test_missing_or_unknown_token_is_401(sandbox: RunningSandbox) -> None:
    body = example("tthc-results.json")
    _assert_error_shape(post(sandbox.base_url, body, "k", JSON, token=None), 401, "UNAUTHORIZED")
    _assert_error_shape(post(sandbox.base_url, body, "k", JSON, token="nope"), 401, "UNAUTHORIZED")
    basic = post(sandbox.base_url, body, "k", JSON, token=None, headers={"Authorization": f"Basic {TOKEN}"})
    _assert_error_shape(basic, 401, "UNAUTHORIZED")
    _assert_error_shape(get(sandbox.base_url, "/submissions/x", token="nope"), 401, "UNAUTHORIZED")


def test_envelope_of_another_sender_is_403(sandbox: RunningSandbox) -> None:
    response = post(sandbox.base_url, example("tthc-results.xml"), "foreign", XML, token=OTHER_TOKEN)
    _assert_error_shape(response, 403, "SENDER_MISMATCH")


@pytest.mark.parametrize(
    "content_type",
    [None, "text/xml", "application/x-www-form-urlencoded", "application/xml; charset=ISO-8859-1",
     "application/json; charset=utf-16", "text/plain"],
)  # fmt: skip
def test_unsupported_media_type_is_415(sandbox: RunningSandbox, content_type: str | None) -> None:
    response = post(sandbox.base_url, example("tthc-results.xml"), "media", content_type)
    _assert_error_shape(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    "content_type", ["Application/JSON", 'application/json; charset="UTF-8"', "application/json;charset=utf-8"]
)
def test_utf8_charset_in_any_case_is_accepted(sandbox: RunningSandbox, content_type: str) -> None:
    assert post(sandbox.base_url, example("tthc-results.json"), "charset", content_type).status_code == 201


def test_declared_body_over_10_mib_is_413_before_it_is_read(sandbox: RunningSandbox) -> None:
    connection = http.client.HTTPConnection(sandbox.root_url.removeprefix("http://"), timeout=10)
    connection.putrequest("POST", "/api/v1/submissions")
    for name, value in (("Authorization", f"Bearer {TOKEN}"), ("Content-Type", JSON), ("Idempotency-Key", "big"),
                        ("Content-Length", str(10 * MIB + 1))):  # fmt: skip
        connection.putheader(name, value)
    connection.endheaders(b"{")  # only one byte of the announced body is ever sent
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"] == "PAYLOAD_TOO_LARGE"
    connection.close()


def test_chunked_body_over_10_mib_is_413(sandbox: RunningSandbox) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(11):
            yield b" " * MIB

    response = post(sandbox.base_url, chunks(), "big-chunked", JSON)  # type: ignore[arg-type]
    _assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")


def test_body_of_exactly_10_mib_is_read(sandbox: RunningSandbox) -> None:
    document = example("tthc-results.json")
    body = document + b" " * (10 * MIB - len(document))  # trailing whitespace is valid JSON
    assert len(body) == 10 * MIB
    assert post(sandbox.base_url, body, "exactly-10-mib", JSON).status_code == 201


def test_unknown_route_and_method_use_the_error_shape(sandbox: RunningSandbox) -> None:
    _assert_error_shape(get(sandbox.base_url, "/nothing-here"), 404, "NOT_FOUND")
    response = requests.put(sandbox.base_url + "/submissions", timeout=10)
    _assert_error_shape(response, 405, "METHOD_NOT_ALLOWED")


# ---------------------------------------------------------------- faults


def test_maintenance_is_503_and_overload_is_429_with_retry_after(sandbox: RunningSandbox) -> None:
    body = example("tthc-results.json")
    sandbox.set_mode("maintenance", retry_after=7)
    response = post(sandbox.base_url, body, "fault", JSON)
    _assert_error_shape(response, 503, "MAINTENANCE")
    assert response.headers["Retry-After"] == "7"
    _assert_error_shape(get(sandbox.base_url, "/submissions/x"), 503, "MAINTENANCE")
    sandbox.set_mode("overload", retry_after=3, overload_share=1.0)
    response = post(sandbox.base_url, body, "fault", JSON)
    _assert_error_shape(response, 429, "OVERLOADED")
    assert response.headers["Retry-After"] == "3"
    sandbox.set_mode("overload", overload_share=0.0)  # overloaded, but this share lets everything through
    assert post(sandbox.base_url, body, "fault", JSON).status_code == 201
    sandbox.set_mode("normal")
    assert post(sandbox.base_url, body, "fault", JSON).headers["Idempotent-Replayed"] == "true"


def test_fault_mode_from_settings(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'c.sqlite3'}", fault_mode="overload", retry_after=5)
    with start_in_thread(settings) as running:
        response = post(running.base_url, example("tthc-results.json"), "k", JSON)
        assert response.status_code == 429 and response.headers["Retry-After"] == "5"


def test_admin_token_protects_the_mode_endpoint(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'c.sqlite3'}", admin_token="admin-secret")
    with start_in_thread(settings) as running:
        with pytest.raises(requests.HTTPError):
            running.set_mode("maintenance")
        running.set_mode("maintenance", admin_token="admin-secret")
        assert post(running.base_url, b"{}", "k", JSON).status_code == 503
        assert "admin-secret" not in repr(settings) and TOKEN not in repr(settings)


# ---------------------------------------------------------------- well-formedness and schema


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<Submission", XML),
        (b"", XML),
        (b'{"schema_version": "1.0",', JSON),
        (b'{"a": 1, "a": 2}', JSON),  # duplicate member names are ambiguous
        (b'{"a": NaN}', JSON),
        ("<Submission>caf\u00e9</Submission>".encode("latin-1"), XML),  # not UTF-8
        (b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><s>&x;</s>', XML),
        (b'<!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><s>&b;</s>', XML),
    ],
)
def test_malformed_bodies_are_400(sandbox: RunningSandbox, body: bytes, content_type: str) -> None:
    response = post(sandbox.base_url, body, "malformed", content_type)
    details = _assert_error_shape(response, 400, "MALFORMED")
    assert "root:" not in json.dumps(details)  # no file content leaks through entity expansion


def test_xml_schema_violations_are_listed_one_by_one_with_paths(sandbox: RunningSandbox) -> None:
    text = example("tthc-results.xml").decode("utf-8")
    text = text.replace("<Version>1</Version>", "<Version>first</Version>")
    text = text.replace('receivedOnline="10"', 'receivedOnline="-10"', 1)
    text = text.replace('fieldName="Đất đai"', "")
    response = post(sandbox.base_url, text.encode("utf-8"), "xsd", XML)
    _assert_error_shape(response, 422, "SCHEMA_INVALID")
    assert sorted(error_paths(response)) == [
        "/Submission/Body/TthcResults/Section[1]/Row[1]/@fieldName",
        "/Submission/Body/TthcResults/Section[2]/Row[1]/@receivedOnline",
        "/Submission/Header/Version",
    ]
    assert set(error_codes(response)) == {"SCHEMA_INVALID"}


def test_json_schema_violations_are_listed_one_by_one_with_paths(sandbox: RunningSandbox) -> None:
    document = with_changes(
        tthc_document(),
        (("header", "period", "start"), "2026-10-32"),  # format "date" is checked
        (("header", "generated_at"), "yesterday"),  # format "date-time" is checked
        (("body", "tthc_results", "sections", 0, "rows", 0, "carried_over"), -1),
        (("body", "tthc_results", "sections", 1, "rows", 0, "field_name"), ...),
        (("header", "unexpected"), True),
    )
    response = post(sandbox.base_url, to_bytes(document), "json-schema", JSON)
    _assert_error_shape(response, 422, "SCHEMA_INVALID")
    assert sorted(error_paths(response)) == [
        "/body/tthc_results/sections/0/rows/0/carried_over",
        "/body/tthc_results/sections/1/rows/0/field_name",
        "/header",
        "/header/generated_at",
        "/header/period/start",
    ]


def test_json_integral_decimal_counts_are_integers(sandbox: RunningSandbox) -> None:
    # Draft 2020-12 treats 120.0 as an integer; it is the same content as 120.
    body = example("tthc-results.json").replace(b'"received_total": 120,', b'"received_total": 120.0,', 1)
    first = post(sandbox.base_url, body, "decimal-count", JSON)
    assert first.status_code == 201, first.text
    assert post(sandbox.base_url, example("tthc-results.json"), "plain-count", JSON).json()["duplicate"] is True


# ---------------------------------------------------------------- versions


def test_same_version_with_different_content_is_a_version_conflict(sandbox: RunningSandbox) -> None:
    assert post(sandbox.base_url, example("tthc-results.json"), "v1", JSON).status_code == 201
    changed = with_changes(tthc_document(), (("header", "completeness", "reported"), 3))
    response = post(sandbox.base_url, to_bytes(changed), "v1-changed", JSON)
    _assert_error_shape(response, 409, "VERSION_CONFLICT")


def test_transport_details_do_not_make_content_different(sandbox: RunningSandbox) -> None:
    assert post(sandbox.base_url, example("tthc-results.json"), "v1", JSON).status_code == 201
    regenerated = with_changes(
        tthc_document(),
        (("header", "submission_id"), "regenerated"),
        (("header", "generated_at"), "2026-11-16T08:00:00+07:00"),
        (("header", "producer", "version"), "0.2.0"),
    )
    response = post(sandbox.base_url, to_bytes(regenerated), "v1-regenerated", JSON)
    assert response.status_code == 200 and response.json()["duplicate"] is True


def test_corrections_must_supersede_the_latest_accepted_version(sandbox: RunningSandbox) -> None:
    def correction(version: int, supersedes: str | None, agency: str = "000.00.01.H99") -> bytes:
        return to_bytes(
            with_changes(
                tthc_document(),
                (("header", "version"), version),
                (("header", "supersedes"), supersedes),
                (("header", "correction_reason"), "sửa số liệu"),
                (("body", "tthc_results", "sections", 0, "rows", 0, "agency"), agency),
            )
        )

    early = post(sandbox.base_url, correction(2, "rcpt-unknown"), "v2-too-early", JSON)
    _assert_error_shape(early, 409, "VERSION_CONFLICT")
    v1 = post(sandbox.base_url, example("tthc-results.json"), "v1", JSON).json()["receipt_id"]
    wrong = post(sandbox.base_url, correction(2, "rcpt-unknown"), "v2-wrong", JSON)
    _assert_error_shape(wrong, 409, "VERSION_CONFLICT")
    assert error_paths(wrong) == ["/header/supersedes"]
    missing = post(sandbox.base_url, correction(2, None), "v2-missing", JSON)
    _assert_error_shape(missing, 409, "VERSION_CONFLICT")
    skipped = post(sandbox.base_url, correction(3, v1), "v3-skipping", JSON)
    _assert_error_shape(skipped, 409, "VERSION_CONFLICT")

    v2 = post(sandbox.base_url, correction(2, v1), "v2", JSON)
    assert v2.status_code == 201 and v2.json()["supersedes"] == v1
    # v1 is no longer the latest: superseding it again is a conflict, at any new version.
    stale = post(sandbox.base_url, correction(3, v1, "000.00.02.H99"), "v3-stale", JSON)
    _assert_error_shape(stale, 409, "VERSION_CONFLICT")
    # The same v2 under another key is a duplicate of the v2 receipt; a different v2 is a conflict.
    again = post(sandbox.base_url, correction(2, v1), "v2-again", JSON)
    assert again.status_code == 200 and again.json() == {**v2.json(), "duplicate": True}
    other_v2 = post(sandbox.base_url, correction(2, v1, "000.00.02.H99"), "v2-other", JSON)
    _assert_error_shape(other_v2, 409, "VERSION_CONFLICT")
    # Version 1 again with other content, after corrections exist: still a conflict.
    other_v1 = to_bytes(with_changes(tthc_document(), (("header", "completeness", "expected"), 2),
                                     (("header", "completeness", "missing"), [])))  # fmt: skip
    _assert_error_shape(post(sandbox.base_url, other_v1, "v1-other", JSON), 409, "VERSION_CONFLICT")

    v3 = post(sandbox.base_url, correction(3, v2.json()["receipt_id"], "000.00.02.H99"), "v3", JSON)
    assert v3.status_code == 201
    listed = get(sandbox.base_url, "/submissions", report_type="TTHC_RESULTS", period="2026-11").json()
    assert [item["version"] for item in listed] == [3, 2, 1]
    assert all(item["duplicate"] is False for item in listed)


# ---------------------------------------------------------------- reading back


def test_receipts_are_only_visible_to_their_sender(sandbox: RunningSandbox) -> None:
    receipt = post(sandbox.base_url, example("tthc-results.json"), "mine", JSON).json()
    assert get(sandbox.base_url, f"/submissions/{receipt['receipt_id']}").json() == receipt
    _assert_error_shape(
        get(sandbox.base_url, f"/submissions/{receipt['receipt_id']}", token=OTHER_TOKEN), 404, "NOT_FOUND"
    )
    _assert_error_shape(get(sandbox.base_url, "/submissions/rcpt-does-not-exist"), 404, "NOT_FOUND")
    foreign_list = get(
        sandbox.base_url, "/submissions", token=OTHER_TOKEN, report_type="TTHC_RESULTS", period="2026-11"
    )
    assert foreign_list.status_code == 200 and foreign_list.json() == []
    assert get(sandbox.base_url, "/submissions", report_type="TTHC_RESULTS", period="2026-10").json() == []


@pytest.mark.parametrize("query", [{}, {"report_type": "TTHC_RESULTS"}, {"report_type": "NOPE", "period": "2026-11"},
                                   {"report_type": "TTHC_RESULTS", "period": "November"}])  # fmt: skip
def test_listing_needs_a_valid_report_type_and_period(sandbox: RunningSandbox, query: dict[str, str]) -> None:
    _assert_error_shape(get(sandbox.base_url, "/submissions", **query), 400, "QUERY_INVALID")
