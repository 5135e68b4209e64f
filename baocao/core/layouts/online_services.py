"""ONLINE_SERVICES: the catalogue, service and dossier counts of each agency line, and its rates."""

from __future__ import annotations


class Kind:
    AGENCY = "AGENCY"
    TOTAL = "TOTAL"


class OnlineType:
    FULL = "FULL"
    PARTIAL = "PARTIAL"
    NONE = "NONE"


AGENCY, KIND = "agency", "kind"


CATALOGUE_COUNTS = ("authority_count", "full_process_count", "partial_count")


SERVICE_COUNTS = ("services_with_dossiers", "full_process_with_dossiers")


DOSSIER_COUNTS = ("dossiers_total", "dossiers_online", "fee_dossiers", "online_payment_dossiers")


COUNT_COLUMNS = (*CATALOGUE_COUNTS, *SERVICE_COUNTS, *DOSSIER_COUNTS)


# rate → (numerator, denominator)
RATES = {
    "full_process_with_dossiers_rate": ("full_process_with_dossiers", "services_with_dossiers"),
    "online_dossier_rate": ("dossiers_online", "dossiers_total"),
    "online_payment_rate": ("online_payment_dossiers", "fee_dossiers"),
}


REPORT_COLUMNS = (KIND, AGENCY, *COUNT_COLUMNS, *RATES)
