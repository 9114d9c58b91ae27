"""ClickHouse's backup-file checksum: the C source of ``reconciler.clickhouse._cityhash102`` and ``pure``, the
pure-Python implementation of the same algorithm (see ``reconciler.checksum``)."""
