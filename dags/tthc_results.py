"""Airflow DAG — TTHC_RESULTS (form II.06a, Circular 01/2020/TT-VPCP) for the Government Office.

Runs at the D09 cut-off: the 15th of each month at 02:00 Asia/Ho_Chi_Minh, for the month that ended
on the 14th. Trigger with {"period": "2026-10"} to rerun or backfill a period.
"""

from baocao.airflow.dags import report_dag

dag = report_dag(
    "TTHC_RESULTS",
    "0 2 15 * *",
    "II.06a: dossiers received and resolved by agency and field (D09 month), for the Government Office.",
)
