"""Airflow DAG — SERVICE_INDEX (Decision 766/QĐ-TTg): the index of service to citizens and businesses.

Quarterly, for the calendar quarter just ended (regime CALENDAR, as the national portal scores it;
a year is the sum of its quarters' counts, so `{"period": "2026"}` reruns it for the year): the 5th
of January, April, July and October at 04:00 Asia/Ho_Chi_Minh. Not on the 1st: applicants rate a
dossier after it is finished (in the simulator up to three days later), so the quarter's last
ratings and results need a few days to reach the one-stop systems. The scoring rules are the
ruleset file in effect for the quarter (transforms/rulesets/service_index/).
"""

from datetime import timedelta

from baocao.airflow.dags import report_dag

dag = report_dag(
    "SERVICE_INDEX",
    "0 4 5 1,4,7,10 *",
    "Decision 766 index: six groups, every metric's numerator, denominator, score and max, per agency and "
    "for the province (calendar quarter).",
    retry_delay=timedelta(minutes=10),
)
