"""Airflow DAG — a correction of an accepted report (central-api.md, "Corrections").

Never scheduled: an operator triggers it with {"report": "TTHC_RESULTS", "period": "2026-10",
"reason": "…"} (and "dry_run": true to see the diff only, "pull": false to re-aggregate what the
warehouse holds). The task log shows every changed cell, old → new, before anything is sent; the
run fails, sending nothing, when nothing changed. Same as `baocao correct`.
"""

from baocao.airflow.dags import correction_dag

dag = correction_dag()
