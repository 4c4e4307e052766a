"""The ``impala-transfer`` command line: the seed tool's flags and environment variables, running
the provider's Airflow-free core (no Airflow database or scheduler needed)."""
