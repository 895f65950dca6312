"""Fixtures of the reference-implementation tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_thread():
    """Run a test module's torch work on one thread (`reference_impls.threads`, as `mi-atlas
    run` does): on the shared 2-core machine, two threads per process oversubscribe the cores
    and make these small ops many times slower."""
    from reference_impls.threads import one_thread

    with one_thread():
        yield
