"""The rules a row of a CSV export or a workbook can break, and those a CSV file refused whole breaks,
each with what it means: the catalogue the quarantine is read with.

Rules are named `<kind>.<what>` (`kind` is `commune`, `petition`, `ict` or `egov`), so that the
quarantine can be filtered by what is wrong. The readers (`commune_csv`, `petition_csv`, `workbooks`)
name them; the detail of each failure names the column and the value. Rows of a workbook that are not
data (headings, footers) are listed as skipped under `<kind>.not_data`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# Every rule a CSV row can break, with what it means (the detail names the column and the value).
CSV_ROW_RULES: Mapping[str, str] = {
    "commune.field_count": "the line has more or fewer fields than the header",
    "commune.code_missing": "ma_hoso is empty",
    "commune.agency_missing": "ma_donvi is empty",
    "commune.channel_missing": "hinhthuc_nop is empty",
    "commune.channel_unknown": "hinhthuc_nop is not a channel code (1, 2, 3)",
    "commune.status_missing": "trang_thai is empty",
    "commune.status_unknown": "trang_thai is not a status code (1-6, 9)",
    "commune.received_missing": "ngay_nhan is empty",
    "commune.date_invalid": "ngay_nhan, ngay_hen_tra, ngay_tra or ngay_capnhat is not a valid dd/mm/yyyy HH:MM",
    "commune.flag_invalid": "co_phi, tt_truc_tuyen or da_so_hoa is not 0, 1 or empty",
    "commune.duplicate_code": "the ma_hoso of a row read before in the same file",
    "petition.field_count": "the line has more or fewer fields than the header",
    "petition.code_missing": "ma_phan_anh is empty",
    "petition.agency_missing": "ma_donvi is empty",
    "petition.received_missing": "ngay_nhan is empty",
    "petition.date_invalid": "ngay_nhan, han_tra_loi or ngay_tra_loi is not a valid dd/mm/yyyy [HH:MM]",
    "petition.satisfied_invalid": "hai_long is not 1, 0 or empty",
    "petition.duplicate_code": "the ma_phan_anh of a row read before in the same file",
}


def _for_kinds(kinds: Sequence[str], meanings: Mapping[str, str]) -> dict[str, str]:
    """The same rules for several kinds: `<kind>.<what>` → meaning."""
    return {f"{kind}.{what}": meaning for kind in kinds for what, meaning in meanings.items()}


# Every rule a workbook row can break (`ict.*` and `egov.*`; the detail names the column and the value).
WORKBOOK_ROW_RULES: Mapping[str, str] = {
    **_for_kinds(
        ("ict", "egov"),
        {
            "code_missing": "Mã đơn vị is empty",
            "code_as_number": "Mã đơn vị is a number: it has lost its leading zeros and dots",
            "name_missing": "Tên đơn vị is empty",
            "score_missing": "a score cell is empty",
            "score_invalid": "a score is not a number in Vietnamese format (302,531), is ambiguous or is negative",
            "duplicate_code": "the Mã đơn vị of a row read before, on this sheet or another",
        },
    ),
    "egov.level_missing": "Mức độ is empty",
    "egov.level_unknown": "Mức độ is not I, II, III, IV or Chưa xếp hạng",
}
# Every rule a CSV file refused whole breaks (its one reject, `ReadResult.refused_whole`).
CSV_FILE_RULES: Mapping[str, str] = _for_kinds(
    ("commune", "petition"),
    {
        "encoding": "the file cannot be decoded with confidence (UTF-8, Windows-1258 or TCVN3)",
        "header": "the file is empty or its header lacks a column",
        "format": "not a readable CSV (e.g. a stray quote)",
        "size": "more lines, or a longer line, than the limits",
        "rejects": "more rows rejected than FileLimits.max_rejected_rows: not an export of the expected form",
    },
)
