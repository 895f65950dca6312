"""Run the zoo's tiny models on one torch thread: faster than several, and kind to a shared CPU.

A zoo forward pass is a few small matrix products; splitting each over threads costs more in
synchronisation than it saves, and on a busy 2-core machine the threads spin against each
other and everything else (measured: a recipe took 295 s on 2 threads under load, 10 s on one).
`registry.run` runs every method, recipe and check inside `one_thread()`; the tests' fixtures
use it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Use one intra-op thread inside the block, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
