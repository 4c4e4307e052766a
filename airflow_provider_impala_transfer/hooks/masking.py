"""Connection secrets into Airflow's log masker, by the provider's one secret rule
(:mod:`...core.common.secrets`): every value it would hide is also hidden in task logs."""

from __future__ import annotations

from typing import Any

from airflow_provider_impala_transfer.core.common.secrets import secret_values


def mask_in_task_logs(options: dict[str, Any]) -> None:
    from airflow.sdk.log import mask_secret

    for value in secret_values(options):
        mask_secret(value)
