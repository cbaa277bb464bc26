"""Native CPU bf16 detection: what it finds, where it is recorded, what it changes (nothing
for ``precision=auto`` on the CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import tiny_run_dict, write_image_npz

from mrdd.config import RunConfig
from mrdd.train import run
from mrdd.train.device import cpu_bf16_support, precision_note, uses_bf16

CPU = torch.device("cpu")
#: /proc/cpuinfo excerpts of three CPUs (flags trimmed).
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"
NEOVERSE_V1 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm svebf16\n"


def test_cpuinfo_flags_name_the_native_bf16_features():
    assert cpu_bf16_support(cpuinfo=SAPPHIRE_RAPIDS).features == ("avx512_bf16", "amx_bf16")
    assert cpu_bf16_support(cpuinfo=NEOVERSE_V1).features == ("bf16", "sve_bf16")
    skylake = cpu_bf16_support(cpuinfo=SKYLAKE)
    assert not skylake.native and skylake.record() == {
        "native": False,
        "features": [],
        "source": "/proc/cpuinfo",
    }


def test_torch_capabilities_are_read_when_given():
    caps = {"avx512_bf16": False, "amx_bf16": True, "amx_tile": True, "architecture": "x86_64"}
    support = cpu_bf16_support(capabilities=caps)
    assert support.features == ("amx_bf16",)
    assert support.describe() == "native bf16: amx_bf16 (torch.cpu.get_capabilities)"


def test_this_machine_is_detected_as_its_own_flags_say():
    """The real query agrees with the kernel's flags for the bf16 features x86 has."""
    support = cpu_bf16_support()
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    flags = cpu_bf16_support(cpuinfo=cpuinfo.read_text())
    x86 = ("avx512_bf16", "amx_bf16")
    assert [f for f in support.features if f in x86] == [f for f in flags.features if f in x86]


def test_auto_is_bf16_on_a_native_cpu_only_and_the_log_says_why(monkeypatch):
    assert uses_bf16(CPU, "auto") == cpu_bf16_support().native  # this machine's answer
    assert uses_bf16(CPU, "bf16") and not uses_bf16(CPU, "fp32")
    assert uses_bf16(torch.device("cuda"), "auto")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    note = precision_note(CPU, "auto")
    assert note.startswith("precision=auto: bf16 autocast on cpu; CPU native bf16: avx512_bf16")
    assert "(auto uses it: val quality within noise of fp32" in note
    assert precision_note(CPU, "fp32").startswith("precision=fp32: fp32 on cpu")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": False})
    assert precision_note(CPU, "auto").startswith("precision=auto: fp32 on cpu; CPU no native")
    assert "(auto stays fp32: bf16 would be emulated here)" in precision_note(CPU, "auto")
    assert "emulated" in precision_note(CPU, "bf16")


def test_run_info_and_train_log_name_what_was_detected(tmp_path):
    write_image_npz(tmp_path / "data.npz")
    cfg = tiny_run_dict(tmp_path / "data.npz", stage="consistency", stage1={"epochs": 1})
    cfg["eval"].update(classifiers=[], regressors=[], figures=False)
    cfg["run"]["precision"] = "auto"  # what this machine's auto picks, and the line saying so
    run(RunConfig.from_dict(cfg), tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["environment"]["cpu_bf16"] == cpu_bf16_support().record()
    log_text = (tmp_path / "run" / "train.log").read_text()
    dtype = "bf16 autocast" if cpu_bf16_support().native else "fp32"
    assert f"precision=auto: {dtype} on cpu; CPU {cpu_bf16_support().describe()}" in log_text
