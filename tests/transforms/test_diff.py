"""The correction diff: cells named by their rows, bookkeeping ignored, XML and JSON alike."""

from __future__ import annotations

import json
from pathlib import Path

from baocao.transforms import diff

EXAMPLES = Path(__file__).resolve().parents[1] / "simulators" / "central_examples"


def test_one_changed_cell_is_named_by_its_row_in_xml() -> None:
    old = (EXAMPLES / "tthc-results.xml").read_bytes()
    new = old.replace(b'receivedOnline="70"', b'receivedOnline="71"', 1).replace(
        b"<Version>1</Version>", b"<Version>2</Version><Supersedes>R-1</Supersedes>"
    )
    changes = diff.diff(old, new, "xml")
    assert [str(change) for change in changes] == [
        "Body / TthcResults / Section[level=PROVINCE] / Row[agency=000.00.01.H99, field=LV-DATDAI]"
        " / received_online: 70 → 71"
    ]


def test_bookkeeping_and_signature_are_not_changes() -> None:
    old = (EXAMPLES / "tthc-results.xml").read_bytes()
    new = (
        old.replace(b"<Version>1</Version>", b"<Version>2</Version>")
        .replace(b"2026-11-15T02:00:00+07:00", b"2026-11-20T09:00:00+07:00")
        .replace(
            b"</Submission>",
            b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignatureValue>x'
            b"</ds:SignatureValue></ds:Signature></Submission>",
        )
    )
    assert diff.diff(old, new, "xml") == []


def test_json_rows_added_removed_and_changed() -> None:
    old_document = json.loads((EXAMPLES / "tthc-results.json").read_bytes())
    new_document = json.loads((EXAMPLES / "tthc-results.json").read_bytes())
    sections = new_document["body"]["tthc_results"]["sections"]
    sections[0]["rows"][0]["resolved_late"] = 3
    removed = sections[1]["rows"].pop(0)
    new_document["header"]["version"] = 2
    changes = {
        change.cell: (change.old, change.new)
        for change in diff.diff(json.dumps(old_document).encode(), json.dumps(new_document).encode(), "json")
    }
    row = "body / tthc_results / sections[level=PROVINCE] / rows[agency=000.00.01.H99, field=LV-DATDAI]"
    assert changes[f"{row} / resolved_late"] == ("2", "3")
    gone = f"body / tthc_results / sections[level=COMMUNE] / rows[agency={removed['agency']}, field={removed['field']}]"
    assert changes[f"{gone} / received_total"] == (str(removed["received_total"]), None)
    assert all(not cell.startswith("header / version") for cell in changes)
    print(f"\n{len(changes)} changed cells, e.g. {row} / resolved_late: 2 → 3")
