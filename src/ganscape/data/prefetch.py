"""Batches of a data set decoded per batch, made while the step trains on the previous one.

``Prefetching`` wraps such a data set (``LazyImages``: image files too big to decode up front). After
each ``sample(n, generator)`` it starts decoding the next batch in a thread, from a copy of the
generator. When the step then asks for a batch of the same size with the generator in the state
the copy started from (the usual case), it receives the decoded batch and the generator is moved to
the state the copy ended in. So the batches, and the generator states that checkpoints store, are
exactly those of sampling without prefetching, and a run resumes as exactly. Any other request is
served directly. On a GPU the batch is decoded into pinned memory, so that its copy to the device
does not wait. One batch is prefetched per generator, so every shard of a step is served.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch


class Prefetching:
    """``data`` (with ``sample(n, generator)``) with the next batch of each generator decoded ahead."""

    def __init__(self, data, pin_memory: bool = False):
        self.data = data
        self.pin_memory = pin_memory
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="prefetch")
        self._ahead: dict[int, tuple[int, torch.Tensor, Future]] = {}  # id(generator) -> (n, start state, batch)

    def __getattr__(self, name: str):
        return getattr(self.data, name)  # shape, classes, take, ... are the data set's own

    def __len__(self) -> int:
        return len(self.data)

    def sample(self, n: int, generator: torch.Generator):
        ahead = self._ahead.pop(id(generator), None)
        if ahead is not None and ahead[0] == n and torch.equal(ahead[1], generator.get_state()):
            batch, end = ahead[2].result()
            generator.set_state(end)
        else:
            batch = self.data.sample(n, generator)
        start = generator.get_state()
        copy = torch.Generator(generator.device).set_state(start)
        self._ahead[id(generator)] = (n, start, self._pool.submit(self._make, n, copy))
        return batch

    def _make(self, n: int, generator: torch.Generator):
        x, labels = self.data.sample(n, generator)
        return (x.pin_memory() if self.pin_memory else x, labels), generator.get_state()
