"""The Airflow adapter: the DAG factory and the tasks' glue. The only package that imports Airflow."""
