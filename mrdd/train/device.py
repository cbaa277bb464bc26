"""Device, precision and seeding: the few environment decisions a run makes."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import platform
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
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
    """Whether ``precision`` means bf16 autocast on ``device``. ``auto``: on CUDA, and on
    a CPU that runs bf16 natively (:func:`cpu_bf16_support`), where its val quality at the
    default is within noise of fp32's over 3 training seeds and a run is 1.12× faster
    (docs/performance.md); fp32 on other CPUs, where bf16 is emulated and slow."""
    native = device.type == "cpu" and _native_cpu_bf16()
    return _picks_bf16(device, precision, native)


def _picks_bf16(device: torch.device, precision: str, native_cpu_bf16: bool) -> bool:
    """The rule of :func:`uses_bf16`, given whether the CPU has native bf16."""
    if precision != "auto":
        return precision == "bf16"
    return device.type == "cuda" or (device.type == "cpu" and native_cpu_bf16)


@functools.cache
def _native_cpu_bf16() -> bool:
    """:func:`cpu_bf16_support` of this process's CPU, asked once (autocast asks per step)."""
    return cpu_bf16_support().native


#: CPU features that execute bf16 arithmetic natively (x86: AVX-512 BF16 and AMX tiles;
#: ARM: the BF16 extension, also in SVE). Without one, bf16 is emulated in fp32 and slow.
NATIVE_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")


@dataclass(frozen=True)
class CpuBf16Support:
    """Which native bf16 features the CPU has, and who said so."""

    features: tuple[str, ...]  # the subset of NATIVE_BF16_FEATURES found
    source: str  # torch.cpu.get_capabilities | /proc/cpuinfo | none

    @property
    def native(self) -> bool:
        return bool(self.features)

    def record(self) -> dict[str, Any]:
        """The entry ``run_info.json`` and ``benchmark.json`` hold."""
        return {"native": self.native, "features": list(self.features), "source": self.source}

    def describe(self) -> str:
        if not self.native:
            return f"no native bf16 ({self.source})"
        return f"native bf16: {', '.join(self.features)} ({self.source})"


def cpu_bf16_support(
    capabilities: Mapping[str, Any] | None = None, cpuinfo: str | None = None
) -> CpuBf16Support:
    """Native bf16 support of this CPU: from torch's own runtime query
    (``torch.cpu.get_capabilities``, in recent torch) or, where torch lacks it, from the
    flags in ``/proc/cpuinfo``. ``capabilities`` / ``cpuinfo`` replace what is queried
    (for tests: the answer for another CPU)."""
    if capabilities is None and cpuinfo is None:
        query = getattr(torch.cpu, "get_capabilities", None)
        if query is not None:
            capabilities = query()
        else:
            try:
                cpuinfo = Path("/proc/cpuinfo").read_text()
            except OSError:
                return CpuBf16Support((), "none")
    if capabilities is not None:
        found = tuple(f for f in NATIVE_BF16_FEATURES if capabilities.get(f) is True)
        return CpuBf16Support(found, "torch.cpu.get_capabilities")
    flags: set[str] = set()
    for line in (cpuinfo or "").splitlines():  # x86: "flags", ARM: "Features"
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    if "svebf16" in flags:  # the kernel's name of what torch calls sve_bf16
        flags.add("sve_bf16")
    found = tuple(f for f in NATIVE_BF16_FEATURES if f in flags)
    return CpuBf16Support(found, "/proc/cpuinfo")


def precision_note(device: torch.device, precision: str) -> str:
    """One log line: the precision a run computes in on ``device``, and on the CPU what
    bf16 support was found and what it means for ``precision``."""
    if device.type != "cpu":
        dtype = "bf16 autocast" if uses_bf16(device, precision) else "fp32"
        return f"precision={precision}: {dtype} on {device.type}"
    support = cpu_bf16_support()
    dtype = "bf16 autocast" if _picks_bf16(device, precision, support.native) else "fp32"
    line = f"precision={precision}: {dtype} on {device.type}"
    line += f"; CPU {support.describe()}"
    if precision == "auto":
        line += (
            " (auto uses it: val quality within noise of fp32, docs/performance.md; "
            "run.precision=fp32 turns it off)"
            if support.native
            else " (auto stays fp32: bf16 would be emulated here)"
        )
    elif precision == "bf16" and not support.native:
        line += " (bf16 is emulated here and usually slower than fp32)"
    return line


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
                    "run.compile=true but torch.compile failed for %s (%s: %s); continuing "
                    "in eager mode. Set run.compile=false to silence this.",
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
