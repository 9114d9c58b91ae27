"""Fixtures for azure tests (Azurite / fake-gcs-server); filled in with the azure store."""
