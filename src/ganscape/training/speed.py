"""The speed settings of a step: precision, compilation and memory layout (``train.precision``,
``train.compile``, ``train.channels_last``), each off by default and each checked against the plain step.

* ``bf16``: the networks run under bfloat16 autocast. What must stay exact stays in float32: the
  logits reach the losses as float32 (``Objective``), spectral norm's power iteration runs with
  autocast off, and gradient penalties differentiate with respect to float32 inputs, so their
  gradients and norms are float32. No loss scaling is needed (bf16 has float32's range).
* ``tf32``: NVIDIA's TensorFloat-32 for float32 matrix products and convolutions (a GPU setting; a
  no-op on the CPU), switched on for the run and restored after it.
* ``compile``: ``torch.compile`` of G's and D's forward passes. Gradient penalties run through the
  eager D: torch.compile does not take the double backward they need.
* ``channels_last``: networks and image batches in NHWC memory layout, which tensor cores prefer.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

PRECISIONS = {"fp32": "float32 everywhere",
              "tf32": "TF32 matrix products and convolutions on NVIDIA GPUs, float32 elsewhere",
              "bf16": "bfloat16 autocast for the networks; losses, penalty norms and spectral norm in float32"}
COMPILERS = {"": "off (eager)", "inductor": "torch.compile with code generation (the fast one; a C++ compiler on CPU)",
             "aot_eager": "torch.compile's graph capture without code generation (checks compilation, no speed)"}


def autocast(precision: str, device: torch.device):
    """The context the networks run in: bfloat16 autocast for ``bf16``, nothing otherwise."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def precision_flags(precision: str):
    """TF32 on for ``tf32`` while the context lasts; the previous settings come back after it."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def compiled(module: nn.Module, backend: str):
    """``module``'s forward as the step calls it: compiled with ``backend``, or the module itself. The
    compiled wrapper shares the module's parameters and buffers, so checkpoints hold the plain module."""
    return torch.compile(module, backend=backend, dynamic=False) if backend else module


def as_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """An image batch in NHWC layout when ``channels_last`` (other tensors as they are)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
