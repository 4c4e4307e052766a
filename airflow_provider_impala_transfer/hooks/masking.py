"""Secrets into Airflow's log masker, by the provider's one secret rule
(:mod:`...core.common.secrets`): every value it would hide is also hidden in task logs."""

from __future__ import annotations

from typing import Any

from airflow_provider_impala_transfer.core.common.secrets import secret_values


def mask_in_task_logs(*values: Any) -> None:
    """Register the secrets of ``values`` with ``airflow.sdk.log.mask_secret``: a connection's
    options (values under secret-looking keys), and the password of any URL a task reads
    (``target_path``, ``output_path``, ``source_hdfs_path``...), as written and percent-decoded."""
    from airflow.sdk.log import mask_secret

    for value in secret_values(list(values)):
        mask_secret(value)
