"""Numeric precision of every trainer and the bench: one setting, ``auto | fp32 | bf16``.

- ``fp32``: plain float32.
- ``bf16``: ``torch.autocast(device, dtype=torch.bfloat16)`` around the forward pass and the losses. Matmuls
  and convolutions run in bf16; parameters, gradients, optimizer state and the memories stay float32 (the
  memories hold layer inputs, which leave the residual stream and LayerNorm in float32, and bf16 compressor
  outputs are promoted as they join the float32 compressed memory: bf16 compute, fp32 storage).
- ``auto``: bf16 where it is native, fp32 elsewhere. On CUDA that is ``torch.cuda.is_bf16_supported()``; on
  a CPU it is bf16 matmul instructions (x86: ``avx512_bf16`` or ``amx_bf16``; Arm: ``bf16``), read from
  /proc/cpuinfo. Without them PyTorch emulates bf16 (slower than fp32), so ``bf16`` is refused there.

The setting is ``train.precision`` (text, speech), ``run.precision`` (rl's learner) and ``ctbench bench core
--precision``. Tests (and a user who knows better) override the CPU's flags with the environment variable
``CTBENCH_CPU_FLAGS`` ("avx512_bf16 ..."; empty: none).
"""
from __future__ import annotations

import contextlib
import functools
import os
import platform
from dataclasses import dataclass

import torch

from .config import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")       # x86 flags; Arm's "Features" name it bf16
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile",
                  "amx_bf16", "amx_int8", "bf16", "sve", "i8mm")   # what the bench records
FLAGS_ENV = "CTBENCH_CPU_FLAGS"


def check_precision(value: str, where: str) -> str:
    """Construction-time validation of a precision setting; ``where`` names it in the error."""
    if value not in PRECISIONS:
        raise ConfigError(f"{where} must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return value


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; ("", {}) where there is none."""
    name, flags = "", None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name" and not name:
                    name = value.strip()
                elif key in ("flags", "features") and flags is None:
                    flags = frozenset(value.split())
    except OSError:
        pass
    return name, flags if flags is not None else frozenset()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags: $CTBENCH_CPU_FLAGS if set, else /proc/cpuinfo, else what torch detects."""
    if FLAGS_ENV in os.environ:
        return frozenset(os.environ[FLAGS_ENV].split())
    flags = _cpuinfo()[1]
    if flags:
        return flags
    probes = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_bf16": "_is_amx_tile_supported",
              "avx2": "_is_avx2_supported"}
    return frozenset(flag for flag, probe in probes.items() if getattr(torch.cpu, probe, lambda: False)())


def cpu_name() -> str:
    return _cpuinfo()[0] or platform.processor() or platform.machine()


def native_cpu_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU runs bf16 matmuls natively (AVX512-BF16, AMX-BF16, Arm BF16)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def cpu_report(threads: int | None = None) -> dict:
    """What the bench records about the CPU it ran on."""
    flags = cpu_flags()
    return {"cpu": cpu_name(), "bf16_flags": sorted(f for f in REPORTED_FLAGS if f in flags),
            "native_bf16": native_cpu_bf16(flags), "flags_source": FLAGS_ENV if FLAGS_ENV in os.environ
            else "/proc/cpuinfo" if _cpuinfo()[1] else "torch.cpu", "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": threads or torch.get_num_threads()}


@dataclass(frozen=True)
class Precision:
    """A resolved setting: ``name`` is fp32 or bf16; ``reason`` says why (printed and recorded)."""
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def bf16_support(device) -> tuple[bool, str]:
    """(whether ``device`` runs bf16 natively, a phrase saying so: "this CPU (name) has ...")."""
    device = torch.device(device)
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
        return native, (f"this GPU ({torch.cuda.get_device_name(device)}) "
                        + ("supports bf16" if native else "does not support bf16"))
    if device.type == "cpu":
        native, flags = native_cpu_bf16(), cpu_flags()
        return native, f"this CPU ({cpu_name()}) " + (
            f"has native bf16 matmuls ({', '.join(f for f in NATIVE_BF16_FLAGS if f in flags)})" if native
            else f"has no native bf16 matmuls (none of {', '.join(NATIVE_BF16_FLAGS[:2])} in its flags)")
    return False, f"device {device.type} is not known to this project to run bf16 natively"


def resolve_precision(setting: str, device, where: str = "train.precision") -> Precision:
    """``auto | fp32 | bf16`` on ``device`` -> fp32 or bf16. Raises ValueError (naming ``where``) for bf16
    where it is not native."""
    check_precision(setting, where)
    if setting == "fp32":
        return Precision("fp32", "set")
    native, why = bf16_support(device)
    if setting == "bf16":
        if not native:
            raise ValueError(f"{where} = 'bf16': {why}, so bf16 autocast would be emulated and slower than fp32; "
                             f"set {where} to 'auto' (bf16 where native) or 'fp32'")
        return Precision("bf16", "set")
    return Precision("bf16" if native else "fp32", f"auto: {why}")


def autocast(device, precision: str | Precision, where: str = "train.precision"):
    """The context to run a forward pass and its losses in: bf16 autocast, or nothing for fp32.
    ``precision``: a setting (resolved here; bf16 refused where not native) or a resolved Precision."""
    device = torch.device(device)
    if not isinstance(precision, Precision):
        precision = resolve_precision(precision, device, where)
    if precision.name == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
