"""Airflow DAG — EGOV_MATURITY: yearly e-government maturity levels by block, for the Ministry of Science.

Runs on 15 January at 03:00 Asia/Ho_Chi_Minh for the calendar year just ended, from the year's
maturity workbook.
"""

from datetime import timedelta

from baocao.airflow.dags import report_dag

dag = report_dag(
    "EGOV_MATURITY",
    "0 3 15 1 *",
    "Readiness scores and maturity levels I–IV or unranked, with the share of each level per block.",
    retry_delay=timedelta(minutes=10),
)
