"""Device, precision and seeding: the few environment decisions a run makes."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import platform
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mrdd.config import ConfigError

log = logging.getLogger("mrdd")


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; asking for CUDA without one fails loudly."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={name} but PyTorch sees no CUDA device "
            f"(torch {torch.__version__}); use device=cpu or device=auto."
        )
    return device


def uses_bf16(device: torch.device, precision: str) -> bool:
    """Whether ``precision`` means bf16 autocast on ``device`` (``auto``: on CUDA only)."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked for (``auto`` = bf16 on CUDA only), else a no-op."""
    if not uses_bf16(device, precision):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class CompiledOrEager:
    """Call a ``torch.compile``-d module, or the module itself once compiling has failed.

    ``torch.compile`` only compiles at the first call (and again on new shapes),
    so a missing compiler or an unsupported op shows up there, not when it is
    wrapped. The first failure is logged with its cause and the run goes on in
    eager mode instead of dying after the data has loaded.
    """

    def __init__(self, module: torch.nn.Module) -> None:
        import torch._dynamo  # imported only when compiling: it is slow to import

        self.failure = torch._dynamo.exc.TorchDynamoException  # base of every compile failure
        self.module = module
        self.compiled: Callable[..., Any] | None = torch.compile(module)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except self.failure as err:
                log.warning(
                    "train.compile=true but torch.compile failed for %s (%s: %s); continuing "
                    "in eager mode. Set train.compile=false to silence this.",
                    type(self.module).__name__,
                    type(err).__name__,
                    str(err).splitlines()[0] if str(err) else "",
                )
                self.compiled = None
        return self.module(*args, **kwargs)


def maybe_compile(module: torch.nn.Module, enabled: bool) -> Callable[..., Any]:
    """``module`` wrapped by :class:`CompiledOrEager` when ``enabled``, else ``module``."""
    return CompiledOrEager(module) if enabled else module


def keep_freed_cpu_memory() -> bool:
    """Make glibc keep freed memory in the process instead of returning it to the OS.

    A training step frees and reallocates the same large activation buffers every
    step. glibc serves blocks above 32 MB with ``mmap`` and unmaps them on free, so
    each step faults in gigabytes of fresh zeroed pages: at the paper's Edge-MNIST
    setting that was a third of a CPU step's time, spent in the kernel. With mmap
    and heap trimming off, freed blocks are reused. The cost: the process keeps
    its peak RSS (which it reaches every step anyway) until it exits. Returns
    whether the setting took effect (only on glibc Linux).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_max = -1, -4  # from <malloc.h>
    # trim threshold -1: never trim; mmap max 0: serve every block from the heap
    return bool(libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, -1))


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False
