"""The provider's Airflow-free core, by subsystem; imports point downward only.

* :mod:`.errors` — the one error tree (``ImpalaTransferError``).
* :mod:`.common` — rules every stage uses: URIs, secrets, plain values, partitions, SQL quoting,
  the source connection, and the records that cross stages (``Chunk``, ``FileEntry``, ``Manifest``).
* :mod:`.extract` — query -> exact-typed chunk files and their manifest.
* :mod:`.transfer` — the methods (distcp, hdfs put/cp, scp, fsspec), verification, the fallback
  chain and publishing by rename.
* :mod:`.table` — the external table on the target and its row count.
* :mod:`.reconcile` — every count of a run must agree.

The hooks, operators, task group, CLI and the seed's Python API are thin adapters over these.
"""
