"""The I/O seam: the one object that opens stores and ClickHouse clients for a config.

Observe and apply take a ``Connections``; tests and embedders can hand in their own factories.
Opened clients are cached so that a run opens each service and bucket once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import clickhouse, cloud_api
from .clickhouse import ClickHouse
from .cloud_api import CloudApiClient, CloudApiFactory
from .errors import ReconcilerError
from .model import Bucket, Config, Service
from .stores import Store, open_store

StoreFactory = Callable[[Bucket], Store]
ClickHouseFactory = Callable[[Service], ClickHouse]


class Connections:
    def __init__(
        self,
        config: Config,
        store_factory: StoreFactory = open_store,
        clickhouse_factory: ClickHouseFactory = clickhouse.connect,
        cloud_api_factory: CloudApiFactory = cloud_api.connect,
    ) -> None:
        self.config = config
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
