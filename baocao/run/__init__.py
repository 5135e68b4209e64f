"""The run: reading the configuration, and the pipeline's steps that the CLI and the Airflow tasks call."""
