"""The I/O seam: the one object that opens stores and ClickHouse clients for a config.

Observe and apply take a ``Connections``; tests and embedders can hand in their own factories.
Opened clients are cached so that a run opens each service and bucket once.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from datetime import datetime

from . import clickhouse
from .clickhouse import ClickHouse
from .cloud import api as cloud_api
from .cloud.api import CloudApiClient, CloudApiFactory
from .errors import ReconcilerError
from .model import UTC, Bucket, Config, Service
from .stores import Store, open_store

StoreFactory = Callable[[Bucket], Store]
ClickHouseFactory = Callable[[Service], ClickHouse]


def wall_clock() -> datetime:
    return datetime.now(UTC)


EMBEDDED_EXTRA = "clickhouse-backup-reconciler[embedded]"


def require_embedded_engine(config: Config) -> None:
    """A ``chdb://`` DSN needs the optional embedded engine; without it, say which extra to install
    (before anything connects, so that it is one line and not a service reported unreachable)."""
    users = sorted(name for name, s in config.services.items() if s.is_chdb)
    if users and importlib.util.find_spec("chdb") is None:
        raise ReconcilerError(
            f"service {users[0]} uses the embedded ClickHouse engine (a chdb:// DSN), which is not installed; "
            f"install it with: pip install '{EMBEDDED_EXTRA}'",
            config.path,
        )


class Connections:
    def __init__(
        self,
        config: Config,
        store_factory: StoreFactory = open_store,
        clickhouse_factory: ClickHouseFactory = clickhouse.connect,
        cloud_api_factory: CloudApiFactory = cloud_api.connect,
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        if clickhouse_factory is clickhouse.connect:
            require_embedded_engine(config)
        self.config = config
        #: the real clock: what records are stamped with and leases judged by (tests inject one)
        self.clock = clock
        self._store_factory = store_factory
        self._clickhouse_factory = clickhouse_factory
        self._stores: dict[str, Store] = {}
        self._services: dict[str, ClickHouse | ReconcilerError] = {}
        self._cloud_api_factory = cloud_api_factory
        self._cloud_apis: dict[str, CloudApiClient] = {}
        self._lock = threading.Lock()

    def store(self, bucket: str) -> Store:
        with self._lock:
            if bucket not in self._stores:
                self._stores[bucket] = self._store_factory(self.config.buckets[bucket])
            return self._stores[bucket]

    def clickhouse(self, service: str) -> ClickHouse:
        """The service's client; a connection failure is remembered for the rest of the run."""
        with self._lock:
            got = self._services.get(service)
            if got is None:
                try:
                    got = self._clickhouse_factory(self.config.services[service])
                except ReconcilerError as e:
                    got = e
                self._services[service] = got
        if isinstance(got, ReconcilerError):
            raise got
        return got

    def cloud_api(self, service: str) -> CloudApiClient:
        """The ClickHouse Cloud API client of a service with ``cloud.api`` (its key, its org)."""
        with self._lock:
            if service not in self._cloud_apis:
                self._cloud_apis[service] = self._cloud_api_factory(self.config.services[service])
            return self._cloud_apis[service]
