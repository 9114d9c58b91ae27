"""Fixtures for gcs tests (Azurite / fake-gcs-server); filled in with the gcs store."""
