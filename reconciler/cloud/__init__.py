"""ClickHouse Cloud: the API client (``api``), the backup settings as the config wants them and
as the API takes them (``settings``), and Cloud's rules about what may be backed up (``rules``).
The state the API reports is observed state: ``reconciler.model.cloud``."""
