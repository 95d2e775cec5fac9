"""Shared run machinery: presets, atomic writes, metrics, checkpoints, schedules, the Trainer.

Domain-agnostic by design: text and speech plug in through `core.run.task.Task`. See docs/run.md.
"""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, seed_everything
from .config import (ConfigError, apply_overrides, build_config, dumps_toml, find_preset, from_dict,
                     load_config, load_toml, to_dict)
from .distributed import DistContext, resolve_device
from .io import (MetricsWriter, atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text,
                 read_json, read_jsonl, write_results)
from .schedule import LRSchedule, UpdateFrequency
from .task import StepResult, Task
from .precision import autocast, resolve_precision
from .trainer import TrainConfig, Trainer

__all__ = [
    "CheckpointError", "ConfigError", "DistContext", "LRSchedule", "MetricsWriter", "StepResult", "Task",
    "TrainConfig", "Trainer", "UpdateFrequency", "apply_overrides", "atomic_torch_save", "build_config", "atomic_write_json",
    "atomic_write_bytes", "atomic_write_text", "autocast", "dumps_toml", "find_preset", "from_dict", "load_checkpoint",
    "load_config", "load_toml", "read_json", "read_jsonl", "resolve_device", "resolve_precision", "save_checkpoint",
    "seed_everything", "to_dict", "write_results",
]
