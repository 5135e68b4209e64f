"""Airflow DAG — ICT_RANKING: the yearly IT-application ranking of agencies, for the Ministry of Science and Technology.

Runs on 15 January at 02:00 Asia/Ho_Chi_Minh for the calendar year just ended, from the year's
self-assessment workbook.
"""

from datetime import timedelta

from baocao.airflow.dags import report_dag

dag = report_dag(
    "ICT_RANKING",
    "0 2 15 1 *",
    "IT-application scores and dense ranks by block (DISTRICT only before 2025-07-01), calendar year.",
    retry_delay=timedelta(minutes=10),
)
