"""Run the zoo's tiny models on one torch thread: faster than several, and kind to a shared CPU.

A zoo forward pass is a few small matrix products; splitting each over threads costs more in
synchronisation than it saves, and on a busy 2-core machine the threads spin against each
other and everything else (measured: a recipe took 295 s on 2 threads under load, 10 s on one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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


def single_threaded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a registered method or recipe so that it runs under `one_thread()`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with one_thread():
            return fn(*args, **kwargs)

    return wrapper
