"""Airflow DAG — ONLINE_SERVICES (Decree 42/2022, now 224/2026): online public services and their use, per agency.

Runs the 15th of each month at 03:00 Asia/Ho_Chi_Minh for the D09 month that ended on the 14th,
after TTHC_RESULTS has pulled the same sources.
"""

from baocao.airflow.dags import report_dag

dag = report_dag(
    "ONLINE_SERVICES",
    "0 3 15 * *",
    "Online services offered (full / partial), used, and paid online, per agency (D09 month).",
)
