"""The speech preset: `[model]` (with `[model.transformer]` or `[model.wavenet]`), `[data]`, `[train]`, `[eval]`.

Presets live in configs/speech/*.toml and load through core.run.load_config, so `--set model.window=256` and
friends work and every bad field is named in the error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.config import CTConfig
from core.run import TrainConfig
from core.run.config import ConfigError
from speech.datasets import SpeechDataConfig
from speech.wavenet import WaveNetConfig

MODEL_KINDS = ("compressive", "transformerxl", "transformer", "wavenet")


@dataclass(frozen=True)
class ModelConfig:
    """kind: compressive | transformerxl | transformer | wavenet.

    window: samples per training window (n_s for the Transformers; WaveNet also reads the previous
        receptive field - 1 samples as context, so its predictions at a window's start are not starved).
    transformer: the core stack (TransformerXL: cmem_len = 0; vanilla Transformer: mem_len = cmem_len = 0).
    wavenet: the WaveNet baseline.
    """
    kind: str = "compressive"
    window: int = 512
    transformer: CTConfig = field(default_factory=CTConfig)
    wavenet: WaveNetConfig = field(default_factory=WaveNetConfig)

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"model.kind={self.kind!r}: expected one of {', '.join(MODEL_KINDS)}")
        if self.window < 1:
            raise ConfigError(f"model.window={self.window}: must be >= 1")
        t = self.transformer
        if self.kind == "transformerxl" and t.cmem_len != 0:
            raise ConfigError(f"model.transformer.cmem_len={t.cmem_len}: a TransformerXL has no compressed "
                              "memory; set it to 0 (give its span to mem_len) or use kind = 'compressive'")
        if self.kind == "transformer" and (t.mem_len or t.cmem_len):
            raise ConfigError("model.transformer.mem_len and cmem_len must be 0 for kind = 'transformer'")
        if self.kind == "compressive" and t.cmem_len == 0:
            raise ConfigError("model.transformer.cmem_len=0: a Compressive Transformer needs a compressed memory "
                              "(or use kind = 'transformerxl')")


@dataclass(frozen=True)
class EvalConfig:
    """Held-out NLL: batch_size parallel streams; max_seconds: audio scored per validation during training and
    in the final evaluation (the first clips of the split; 0 = the whole split; `eval --max-seconds` overrides);
    split: scored by `ctbench speech eval` and at the end of training."""
    batch_size: int = 8
    max_seconds: float = 0.0
    split: str = "test"

    def __post_init__(self):
        if self.batch_size < 1:
            raise ConfigError(f"eval.batch_size={self.batch_size}: must be >= 1")
        if self.max_seconds < 0:
            raise ConfigError(f"eval.max_seconds={self.max_seconds}: must be >= 0")
        if self.split not in ("train", "valid", "test"):
            raise ConfigError(f"eval.split={self.split!r}: expected train, valid or test")


@dataclass(frozen=True)
class SpeechConfig:
    preset: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: SpeechDataConfig = field(default_factory=SpeechDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def load_speech_config(preset: str, overrides: list[str] | tuple[str, ...] = ()) -> SpeechConfig:
    """configs/speech/<preset>.toml (or a TOML path) + `--set` overrides -> SpeechConfig; `preset` defaults to
    the preset's file name."""
    from pathlib import Path

    from core.run import load_config

    cfg = load_config(SpeechConfig, "speech", preset, list(overrides))
    if not cfg.preset:
        import dataclasses
        cfg = dataclasses.replace(cfg, preset=Path(preset).stem)
    return cfg
