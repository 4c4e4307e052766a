"""The seed tool's Python API under the name its users import (``impala_transfer.transfer`` becomes
``airflow_provider_impala_transfer.transfer``); the classes live in :mod:`.compat.seed_managers`."""

from airflow_provider_impala_transfer.compat.seed_managers import (
    ConfigError,
    FSSpecFileTransferManager,
    UnifiedFileTransferManager,
    mask_secrets,
)

__all__ = ["FSSpecFileTransferManager", "UnifiedFileTransferManager", "ConfigError", "mask_secrets"]
