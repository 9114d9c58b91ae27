"""The bucket is the state (docs/bucket-layout.md): where things live (``layout``), the
reconciler's records beside ClickHouse's files and their codecs — the sidecar of each backup
(``sidecar``), the per-schedule index (``index``), the apply lock, the restore and run records
(``records``) — and reading one schedule's folders (``folders``)."""
