"""Fixtures for Azure Blob Storage tests: Azurite (a real emulator process, see servers_azure.py).

- ``azurite_server``: Azurite's blob service, started once per session (per xdist worker);
  fails — never skips — when Azurite is not installed, saying to run scripts/setup.sh;
- ``azure_bucket``: a fresh container ``t-<uuid8>`` as a configured ``model.Bucket`` whose
  credentials are ``account_name`` + ``account_key`` (the account URL is the bucket's endpoint);
- ``azure_bucket_cs``: the same with a ``connection_string`` instead;
- ``azure_bucket_any``: parametrized over both credential forms (test ids ``account_key`` and
  ``connection_string``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from reconciler.model import Bucket, Credentials, Provider
from tests.support.servers_azure import AzuriteServer, azurite_missing

CREDENTIAL_FORMS = ("account_key", "connection_string")


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[AzuriteServer]:
    """Azurite's blob service on a free loopback port, for the whole session."""
    missing = azurite_missing()
    if missing:
        pytest.fail(missing, pytrace=False)
    server = AzuriteServer()
    try:
        server.start()  # a server that does not come up fails with the tail of its log
        yield server
    finally:
        server.cleanup()


def new_container(server: AzuriteServer) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    server.create_container(name)
    return name


def azure_bucket_for(server: AzuriteServer, container: str, form: str = "account_key") -> Bucket:
    """A configured bucket on ``container`` of ``server`` with credentials of ``form``."""
    if form == "account_key":
        creds = Credentials(account_name=server.account_name, account_key=server.account_key)
    elif form == "connection_string":
        creds = Credentials(connection_string=server.connection_string)
    else:
        raise ValueError(f"unknown credential form {form!r}")
    return Bucket(
        name="primary",
        provider=Provider.AZURE,
        bucket=container,
        prefix="clickhouse",
        endpoint=server.endpoint,
        credentials=creds,
    )


@pytest.fixture
def azure_bucket(azurite_server: AzuriteServer) -> Bucket:
    """A fresh container on Azurite; credentials account_name + account_key."""
    return azure_bucket_for(azurite_server, new_container(azurite_server), "account_key")


@pytest.fixture
def azure_bucket_cs(azurite_server: AzuriteServer) -> Bucket:
    """A fresh container on Azurite; credentials a connection string."""
    return azure_bucket_for(azurite_server, new_container(azurite_server), "connection_string")


@pytest.fixture(params=CREDENTIAL_FORMS)
def azure_bucket_any(request: pytest.FixtureRequest, azurite_server: AzuriteServer) -> Bucket:
    """A fresh container on Azurite, once with each credential form."""
    return azure_bucket_for(azurite_server, new_container(azurite_server), str(request.param))
