from ..retry import DEFAULT_POLICY, NO_RETRY, RetryPolicy  # noqa: F401  # moved to reconciler/retry.py
