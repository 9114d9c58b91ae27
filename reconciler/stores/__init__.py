"""Object stores behind one protocol, built on one base (base.py): S3, Azure Blob Storage, GCS, and
an in-memory store for tests (memory.py). ``open_store`` picks the one a configured bucket needs."""

from __future__ import annotations

from ..errors import ReconcilerError
from ..model import Bucket, Provider
from ..retry import DEFAULT_POLICY, RetryPolicy
from .base import ObjectInfo, Store

__all__ = ["ObjectInfo", "RetryPolicy", "Store", "open_store"]


def open_store(bucket: Bucket, *, retry: RetryPolicy = DEFAULT_POLICY) -> Store:
    """The store of a configured bucket (the bucket's prefix is not applied: keys are full keys)."""
    provider = Provider(bucket.provider)
    if provider == Provider.S3:
        from .s3 import S3Store  # boto3 is imported only when an S3 bucket is used

        return S3Store(bucket, retry=retry)
    if provider == Provider.AZURE:
        from .azure import AzureStore

        return AzureStore(bucket, retry=retry)
    if provider == Provider.GCS:
        from .gcs import GCSStore

        return GCSStore(bucket, retry=retry)
    raise ReconcilerError(f"provider {provider.value} is not supported", f"bucket {bucket.name}")
