"""Helpers for the central sandbox tests: settings, HTTP calls and small valid documents.

The documents are hand-computed and valid; tests change one number to break one rule.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from baocao.simulators.central import Settings

EXAMPLES = Path(__file__).parent / "central_examples"  # copies of /work/shared/specs/examples
SENDER = "000.00.00.H99"
TOKEN = "token-h99"
OTHER_SENDER = "000.00.00.H01"
OTHER_TOKEN = "token-h01"
XML = "application/xml"
JSON = "application/json"


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, tokens={TOKEN: SENDER, OTHER_TOKEN: OTHER_SENDER}, **overrides)


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def post(
    base_url: str,
    body: bytes,
    key: str | None,
    content_type: str | None = JSON,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    sent = dict(headers or {})
    if key is not None:
        sent["Idempotency-Key"] = key
    if content_type is not None:
        sent["Content-Type"] = content_type
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return requests.post(base_url + "/submissions", data=body, headers=sent, timeout=30)


def get(base_url: str, path: str, token: str = TOKEN, **params: str) -> requests.Response:
    return requests.get(base_url + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def to_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")


def error_codes(response: requests.Response) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


def error_paths(response: requests.Response) -> list[str]:
    return [error["path"] for error in response.json()["errors"]]


def _header(report_type: str, period: dict[str, str], version: int = 1) -> dict[str, Any]:
    return {
        "submission_id": f"sub-{report_type.lower()}-{period['id']}",
        "report_type": report_type,
        "sender": {"code": SENDER, "name": "UBND tỉnh Mẫu"},
        "receiver": {"code": "000.00.00.G22", "name": "Bộ Khoa học và Công nghệ"},
        "period": period,
        "version": version,
        "generated_at": "2026-01-20T09:30:00+07:00",
        "producer": {"name": "tests", "version": "0"},
        "completeness": {"expected": 2, "reported": 2, "missing": []},
    }


YEAR_2025_CALENDAR = {"type": "YEAR", "id": "2025", "regime": "CALENDAR", "start": "2025-01-01", "end": "2025-12-31"}
Q1_2026_D09 = {"type": "QUARTER", "id": "2026-Q1", "regime": "D09", "start": "2025-12-15", "end": "2026-03-14"}


def tthc_document() -> dict[str, Any]:
    """The JSON example (TTHC_RESULTS, MONTH 2026-11 under D09)."""
    document: dict[str, Any] = json.loads(example("tthc-results.json"))
    return document


def ict_document() -> dict[str, Any]:
    agency = {"infrastructure": 60, "human_resources": 60, "applications": 275, "policy": 70}
    return {
        "schema_version": "1.0",
        "header": _header("ICT_RANKING", YEAR_2025_CALENDAR),
        "body": {
            "ict_ranking": {
                "blocks": [
                    {
                        "id": "DEPARTMENT",
                        "agencies": [
                            {"code": "000.00.10.H99", "rank": 1, **agency, "total": 465.000},
                            {"code": "000.00.12.H99", "rank": 1, **agency, "total": 465},  # a tie shares rank 1
                            {
                                "code": "000.00.11.H99", "rank": 2, "infrastructure": 58.23, "human_resources": 60,
                                "applications": 276, "policy": 70, "total": 464.23,
                            },
                        ],
                    }
                ]
            }
        },
    }  # fmt: skip


def online_document() -> dict[str, Any]:
    def counts(authority: int, full: int, partial: int) -> dict[str, Any]:
        return {
            "authority_count": authority, "full_process_count": full, "partial_count": partial,
            "services_with_dossiers": 7, "full_process_with_dossiers": 3, "dossiers_total": 200,
            "dossiers_online": 150, "fee_dossiers": 0, "online_payment_dossiers": 0,
            "full_process_with_dossiers_rate": 42.86, "online_dossier_rate": 75.00,
        }  # fmt: skip

    return {
        "schema_version": "1.0",
        "header": _header("ONLINE_SERVICES", Q1_2026_D09),
        "body": {
            "online_services": {
                "agencies": [{"code": "000.00.10.H99", **counts(10, 4, 5)}],
                "total": counts(10, 4, 5),
            }
        },
    }


def egov_document() -> dict[str, Any]:
    levels = ["I", "II", "II", "UNRANKED"]
    return {
        "schema_version": "1.0",
        "header": _header("EGOV_MATURITY", YEAR_2025_CALENDAR),
        "body": {
            "egov_maturity": {
                "blocks": [
                    {
                        "id": "DEPARTMENT",
                        "agencies": [
                            {"code": f"000.00.{10 + i}.H99", "readiness_score": 50 + i, "level": level}
                            for i, level in enumerate(levels)
                        ],
                        "summary": [
                            {"level": "I", "count": 1, "share": 25.00},
                            {"level": "II", "count": 2, "share": 50.00},
                            {"level": "III", "count": 0, "share": 0},
                            {"level": "IV", "count": 0, "share": 0.00},
                            {"level": "UNRANKED", "count": 1, "share": 25},
                        ],
                    }
                ]
            }
        },
    }


def service_index_document() -> dict[str, Any]:
    groups = [
        ("TRANSPARENCY", [("T1", Decimal("5.5")), ("T2", Decimal("4")), ("T3", Decimal("2")), ("T4", Decimal("6"))]),
        ("PROGRESS", [("P1", Decimal("19.6"))]),
        ("ONLINE_SERVICE", [("O1", Decimal("2")), ("O2", Decimal("3.111")), ("O3", Decimal("6"))]),
        ("ONLINE_PAYMENT", [("M1", Decimal("3"))]),
        ("SATISFACTION", [("S1", Decimal("6")), ("S2", Decimal("6"))]),
        ("DIGITIZATION", [("D1", Decimal("20.5"))]),
    ]
    rendered = [
        {
            "id": group_id,
            "score": float(sum(score for _, score in metrics)),
            "max": 20,
            "metrics": [{"id": mid, "score": float(score), "max": 6} for mid, score in metrics],
        }
        for group_id, metrics in groups
    ]
    total = sum(sum(score for _, score in metrics) for _, metrics in groups)
    return {
        "schema_version": "1.0",
        "header": _header("SERVICE_INDEX", Q1_2026_D09),
        "body": {"service_index": {"agencies": [{"code": "000.00.10.H99", "total": float(total), "groups": rendered}]}},
    }


def with_changes(document: dict[str, Any], *changes: tuple[tuple[str | int, ...], Any]) -> dict[str, Any]:
    """A deep copy of ``document`` with values set at paths (a value of ``...`` deletes the member)."""
    changed = copy.deepcopy(document)
    for path, value in changes:
        target: Any = changed
        for step in path[:-1]:
            target = target[step]
        if value is ...:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return changed
