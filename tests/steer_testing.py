"""Shared pieces of the steer and recipe tests (tests/impls/test_steer_*.py, test_recipes.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=False)
def one_thread():
    """Run a module's torch work on one thread, then restore the previous setting.

    The models are tiny: on a shared 2-core machine, torch's intra-op threads spin against
    each other and every other process (measured: a 50-step SAE fit took 10 s on 2 threads
    under load, 0.2 s on one).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
