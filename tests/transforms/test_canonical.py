"""Canonical mapping: vendor field names and words by configuration, NFC text, UTC+7 times, no personal data."""

from __future__ import annotations

import unicodedata
from datetime import datetime

import pytest

from baocao.core.errors import ConfigurationError
from baocao.transforms.canonical import canonical_frame, canonical_record, deduplicate_latest

VENDOR_B = {  # another vendor's dialect of the same API: configuration only
    "code": "ma_ho_so",
    "agency_code": "don_vi.ma",
    "field_code": "linh_vuc.ma",
    "field_name": "linh_vuc.ten",
    "channel": "kenh",
    "status": "trang_thai",
    "received_at": "ngay_nhan",
    "due_at": "han_xu_ly",
    "finished_at": "ngay_tra",
    "updated_at": "cap_nhat",
}
WORDS_B = {"status": {"DA_TRA_KET_QUA": "RESOLVED"}, "channel": {"TRUC_TUYEN": "ONLINE"}}


def test_a_second_vendor_maps_by_configuration_and_drops_personal_data() -> None:
    record = {
        "ma_ho_so": "H99.01-261020-0001",
        "don_vi": {"ma": "000.00.01.H99"},
        "linh_vuc": {"ma": "LV-HOTICH", "ten": unicodedata.normalize("NFD", "Hộ tịch")},
        "kenh": "TRUC_TUYEN",
        "trang_thai": "DA_TRA_KET_QUA",
        "ngay_nhan": "2026-10-20T08:00:00",
        "han_xu_ly": "2026-10-25T10:00:00Z",
        "ngay_tra": "2026-10-24T01:00:00+00:00",
        "cap_nhat": "2026-10-24 08:00",
        "applicant": {"name": "Nguyễn Văn A", "id_number": "079123456789", "phone": "0912345678"},
    }
    row = canonical_record(record, VENDOR_B, WORDS_B)
    assert row["code"] == "H99.01-261020-0001" and row["agency_code"] == "000.00.01.H99"
    assert row["field_name"] == "Hộ tịch" and unicodedata.is_normalized("NFC", row["field_name"])
    assert (row["channel"], row["status"]) == ("ONLINE", "RESOLVED")
    assert row["received_at"] == datetime(2026, 10, 20, 8, 0)  # no offset means UTC+7
    assert row["due_at"] == datetime(2026, 10, 25, 17, 0)  # 10:00 UTC = 17:00 local
    assert row["finished_at"] == datetime(2026, 10, 24, 8, 0)
    assert "Nguyễn" not in repr(row) and "079123456789" not in repr(row) and "0912345678" not in repr(row)


def test_a_mapping_that_points_at_personal_data_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="personal"):
        canonical_record({"applicant": {"name": "x"}}, {"field_name": "applicant.name"}, {})


def test_unreadable_values_become_null_for_validation_to_report() -> None:
    row = canonical_record({"code": "x", "received_at": "20/10/2026", "status": "ĐANG XỬ LÝ"}, {}, {})
    assert row["received_at"] is None and row["status"] == "ĐANG XỬ LÝ"


def test_deduplication_keeps_the_latest_version_of_each_code() -> None:
    older = canonical_record({"code": "a", "status": "PROCESSING", "updated_at": "2026-10-20T08:00:00+07:00"}, {}, {})
    newer = canonical_record({"code": "a", "status": "RESOLVED", "updated_at": "2026-10-21T08:00:00+07:00"}, {}, {})
    other = canonical_record({"code": "b", "status": "RECEIVED", "updated_at": "2026-10-19T08:00:00+07:00"}, {}, {})
    kept = deduplicate_latest([newer, other, older])
    assert sorted((r["code"], r["status"]) for r in kept) == [("a", "RESOLVED"), ("b", "RECEIVED")]
    frame = canonical_frame(kept)
    assert list(frame["code"]) == ["a", "b"] and frame["due_days"].isna().all()
