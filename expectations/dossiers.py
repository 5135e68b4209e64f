"""Suite on canonical dossiers, run in the warehouse (GX SQL engine) on each staged batch only.

Every rule is record-level: a failing dossier is quarantined with the rule's name and the batch
goes on. Checking only what changed keeps validation proportional to the batch, not the history.
"""

from __future__ import annotations

from collections.abc import Sequence

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from baocao.core.canonical import DUE_DAYS, FINISHED_STATUSES, Channel, Col, Status
from baocao.expectations.gx_adapter.unique_in_batch import ExpectColumnValuesToBeUniqueInBatch

SUITE_NAME = "canonical_dossiers"
# The central's `Code` type: field codes outside it would make the whole submission fail its schema.
FIELD_CODE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# A time limit longer than two years is a data-entry error in every procedure we know of.
LONGEST_SENSIBLE_DUE_DAYS = 730


def dossier_suite(agency_codes: Sequence[str]) -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column=Col.CODE.value, description="Every dossier has a code: it is the key of every upsert."
        ),
        ExpectColumnValuesToBeUniqueInBatch(
            column=Col.CODE.value, description="One row per dossier code in a batch, or counts double."
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column=Col.AGENCY_CODE.value, description="Rows are by agency: a dossier without one cannot be placed."
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=Col.AGENCY_CODE.value,
            value_set=list(agency_codes),
            description="The agency is in the registry, so the dossier lands in the right section.",
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column=Col.FIELD_CODE.value, description="Rows are by field (lĩnh vực): the field code is required."
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column=Col.FIELD_CODE.value,
            regex=FIELD_CODE_PATTERN,
            description="The field code fits the central schema's Code type.",
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column=Col.FIELD_NAME.value, description="The report shows the field's name beside its code."
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=Col.CHANNEL.value,
            value_set=[c.value for c in Channel],
            description="Known channel: online, direct or postal (received_online/received_direct).",
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column=Col.CHANNEL.value, description="Every dossier came in by some channel."
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=Col.STATUS.value,
            value_set=[s.value for s in Status],
            description="Known status: the II.06a columns are defined on these statuses only.",
        ),
        gxe.ExpectColumnValuesToNotBeNull(column=Col.STATUS.value, description="Every dossier has a status."),
        gxe.ExpectColumnValuesToNotBeNull(
            column=Col.RECEIVED_AT.value, description="The reception time decides the period a dossier counts in."
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=Col.FINISHED_AT.value,
            column_B=Col.RECEIVED_AT.value,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            description="Received no later than finished; otherwise received = resolved + in progress breaks.",
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column=Col.FINISHED_AT.value,
            row_condition=Column(Col.STATUS.value).is_in([s.value for s in FINISHED_STATUSES]),
            description="A resolved, returned or withdrawn dossier has a finishing time.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column=DUE_DAYS,
            min_value=0,
            max_value=LONGEST_SENSIBLE_DUE_DAYS,
            description="The due date is sensible: not before reception, within two years of it.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column=Col.RATING.value, min_value=1, max_value=5, description="Satisfaction ratings are 1 to 5 when given."
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column=Col.UPDATED_AT.value, description="The change time orders versions; without it upserts are unsafe."
        ),
    ]
