"""SERVICE_INDEX for real: the one-stop simulator → extract → validate → index → suite → ledger → the sandbox.

Both submission formats, each accepted by the project's central sandbox (schema and business rules)
on loopback. The province's figures are checked against a plain, dossier-by-dossier reading of the
simulator's data, independent of the warehouse query.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators.onestop.expected_results import (
    RESOLVED_EARLY,
    RESOLVED_ON_TIME,
    RESOLVED_TOTAL,
    period_instants,
    tthc_results_total,
)
from baocao.simulators.onestop.generator import generate
from baocao.simulators.onestop.records import Channel, Status
from baocao.simulators.onestop.server import Settings as OneStopSettings
from baocao.storage import ledger
from baocao.transforms import render
from tests.baocao.test_pipeline_e2e import SECRET, TOKEN, running

PERIOD = "2026-Q3"
START, END = date(2026, 7, 1), date(2026, 9, 30)


def service_index_report(fmt: str) -> str:
    return f"""
[reports.SERVICE_INDEX]
receiver_code = "000.00.00.G01"
receiver_name = "Văn phòng Chính phủ"
regime = "CALENDAR"
period_type = "QUARTER"
format = "{fmt}"
sources = ["onestop"]
"""


def _province_metrics(payload: bytes, fmt: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """The province's total and its metrics (id → attributes) as sent."""
    if fmt == "json":
        agencies = json.loads(payload)["body"]["service_index"]["agencies"]
        province = agencies[-1]
        metrics = {m["id"]: m for g in province["groups"] for m in g["metrics"]}
        return province["code"], metrics
    ns = {"s": render.NAMESPACE}
    province_element = etree.fromstring(payload).findall("s:Body/s:ServiceIndex/s:Agency", ns)[-1]
    metrics = {str(m.get("id")): dict(m.attrib) for m in province_element.findall("s:Group/s:Metric", ns)}
    return str(province_element.get("code")), metrics


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_service_index_from_the_simulator_to_an_accepted_submission(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = generate(seed=23, volume=2500, start=START, end=END)
    cut = datetime(2026, 10, 5, 4, 0, tzinfo=LOCAL_TIMEZONE)  # the DAG's run: the 5th after the quarter
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=cut)
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        config.path.write_text(config.path.read_text(encoding="utf-8") + service_index_report(fmt), encoding="utf-8")
        config = load_config(config.path)
        result = pipeline.run_report(config, "SERVICE_INDEX", PERIOD)
        receipt = result.receipt
        assert receipt["status"] == "accepted" and receipt["report_type"] == "SERVICE_INDEX"
        assert receipt["period"] == PERIOD
        listed = requests.get(
            f"{config.central.url}/submissions",
            params={"report_type": "SERVICE_INDEX", "period": PERIOD},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).json()
        assert len(listed) == 1
        engine = pipeline.engine_for(config)
        [stored] = ledger.listing(engine, "SERVICE_INDEX")
        assert (stored["state"], stored["format"]) == (ledger.State.ACCEPTED, fmt)

        # A rerun sends nothing: the stored receipt comes back.
        rendered = pipeline.render(config, "SERVICE_INDEX", PERIOD)
        assert rendered.submission is not None
        assert pipeline.publish(config, rendered.submission.id)["receipt_id"] == receipt["receipt_id"]
        payload = rendered.payload
        total = pipeline.report_summary(config, "SERVICE_INDEX", PERIOD)

    code, metrics = _province_metrics(payload, fmt)
    assert code == config.province_code
    start, end = period_instants(START, END)
    current = [d for d in dataset.current_dossiers(cut) if not d.deleted and d.status is not Status.CANCELLED]
    received = [d for d in current if start <= d.received_at < end]
    finished = [
        d
        for d in current
        if d.status in (Status.RESOLVED, Status.RETURNED, Status.WITHDRAWN)
        and d.finished_at is not None
        and start <= d.finished_at < end
    ]
    tthc = tthc_results_total(dataset.current_dossiers(cut), START, END)
    resolved = [d for d in finished if d.status is Status.RESOLVED]
    rated = [d for d in finished if d.rating is not None]

    def counts(metric: str) -> tuple[int, int]:
        return int(metrics[metric]["numerator"]), int(metrics[metric]["denominator"])

    assert counts("ONLINE_DOSSIERS") == (sum(d.channel is Channel.ONLINE for d in received), len(received))
    assert counts("RESOLVED_ON_TIME") == (
        int(tthc[RESOLVED_EARLY] or 0) + int(tthc[RESOLVED_ON_TIME] or 0),
        int(tthc[RESOLVED_TOTAL] or 0),
    )
    assert counts("RESULT_ELECTRONIC") == (sum(d.result_electronic for d in resolved), len(resolved))
    assert counts("RECEPTION_SATISFACTION") == (sum(d.rating >= 4 for d in rated if d.rating), len(rated))
    assert counts("PAPERS_DIGITIZED") == (sum(d.digitized for d in received), len(received))
    assert counts("OFFERED_ONLINE") == (
        sum(p.online_type.value != "NONE" for p in dataset.procedures),
        len(dataset.procedures),
    )
    assert counts("PUBLISHED_ON_TIME") == (
        sum(p.published_on_time for p in dataset.procedures),
        len(dataset.procedures),
    )
    # Sources we do not have are said to be missing, never filled in.
    for metric in ("NATIONAL_PORTAL_SYNC", "PETITIONS_ANSWERED_ON_TIME", "PERSONAL_STORAGE_SYNC"):
        assert "numerator" not in metrics[metric] and "denominator" not in metrics[metric]
        assert float(metrics[metric]["score"]) == 0
    assert 0 < float(total["total"]) < 100 and total["agencies"] > 10
