"""Fixtures for ClickHouse Cloud API tests: one in-process API server for the session, its
state reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cloud_api_server import CloudApiServer


@pytest.fixture(scope="session")
def cloud_api_session() -> Iterator[CloudApiServer]:
    server = CloudApiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cloud_api_server(cloud_api_session: CloudApiServer) -> Iterator[CloudApiServer]:
    """The session's Cloud API server, with no services, faults or logged requests."""
    cloud_api_session.reset()
    yield cloud_api_session
    cloud_api_session.reset()
