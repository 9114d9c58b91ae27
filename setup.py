"""The C extension only; all metadata is in pyproject.toml (setuptools reads both)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "reconciler.clickhouse._cityhash102",
            sources=["reconciler/clickhouse/_cityhash/cityhash102.c"],
            extra_compile_args=["-O3"],
        )
    ]
)
