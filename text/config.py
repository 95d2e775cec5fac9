"""The text domain's preset: `[model] [data] [train] [eval]` sections of configs/text/*.toml."""
from __future__ import annotations

from dataclasses import dataclass, field

from core import CTConfig
from core.run import ConfigError, TrainConfig

from .data.longrange import LongRangeConfig

ARCHS = ("transformer", "lstm")
EMBEDDINGS = ("tied", "untied", "adaptive")


@dataclass(frozen=True)
class ModelConfig:
    """The language model: embedding -> stack -> softmax head.

    arch = "transformer" is the core stack: Compressive Transformer when cmem_len > 0, TransformerXL when
    cmem_len = 0 (give it mem_len = n_m + n_cm for equal attention cost), vanilla Transformer when both
    are 0. arch = "lstm" is an n_layers LSTM of width d_model that carries (h, c) across windows.
    embedding: tied input/output matrix, untied, or adaptive input + adaptive softmax (word vocabularies,
    `cutoffs`; cutoffs >= the vocabulary size are dropped).
    """
    arch: str = "transformer"
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    mem_len: int = 128
    cmem_len: int = 128
    compression_rate: int = 3
    compression: str = "conv"
    compression_loss: str = "attention"
    compression_loss_weight: float = 1.0
    dropout: float = 0.1
    dropatt: float = 0.0
    pre_ln: bool = False
    clamp_len: int = -1
    same_length: bool = False
    embedding: str = "tied"
    cutoffs: tuple[int, ...] = (20000, 40000, 200000)
    div_value: float = 4.0

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ConfigError(f"model.arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.embedding not in EMBEDDINGS:
            raise ConfigError(f"model.embedding must be one of {', '.join(EMBEDDINGS)}, got {self.embedding!r}")
        if list(self.cutoffs) != sorted(set(self.cutoffs)) or any(c <= 0 for c in self.cutoffs):
            raise ConfigError(f"model.cutoffs must be increasing positive integers, got {list(self.cutoffs)}")
        if self.arch == "transformer":
            try:
                self.ct_config()
            except ValueError as e:  # CTConfig names its field: re-raise under the preset's section
                raise ConfigError(f"model.{str(e).removeprefix('CTConfig.')}") from None
        elif self.d_model < 1 or self.n_layers < 1:
            raise ConfigError("model.d_model and model.n_layers must be >= 1")

    def ct_config(self, mem_len: int | None = None, cmem_len: int | None = None) -> CTConfig:
        sizes = {"mem_len": mem_len, "cmem_len": cmem_len}
        return CTConfig.from_fields(self, **{k: v for k, v in sizes.items() if v is not None})

    @property
    def name(self) -> str:
        """The model's name in results.json."""
        if self.arch == "lstm":
            return "lstm"
        if self.cmem_len > 0:
            return "compressive"
        return "transformerxl" if self.mem_len > 0 else "transformer"


@dataclass(frozen=True)
class DataConfig:
    """dataset: enwik8 | wikitext103 | wikitext2 | pg19 | books:DIR | longrange | longrange-topic.
    window: tokens per training window (n_s). reset_at_doc: empty a stream's memory when its window starts
    a new document."""
    dataset: str = "longrange"
    window: int = 128
    data_dir: str = ""              # "" -> ~/.cache/ctbench (or $CTBENCH_DATA)
    source: str = ""                # a local copy of the raw data (enwik8 zip, pg19 folder, ...)
    allow_partial: bool = False
    vocab_size: int = 32000         # subword vocabularies (pg19, books)
    seed: int = 0
    reset_at_doc: bool = True
    max_books: int = 0              # books:DIR / pg19: use only this many books (0: all)
    longrange: LongRangeConfig = field(default_factory=LongRangeConfig)   # the generator (longrange only)

    def __post_init__(self):
        if self.window < 1:
            raise ConfigError(f"data.window must be >= 1, got {self.window}")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation streams the split once with memory. mem_len / cmem_len: -1 = as trained (the paper
    evaluates with larger memories). valid_windows limits the periodic validation during training."""
    split: str = "valid"
    batch_size: int = 1
    window: int = 0                 # 0 -> data.window
    mem_len: int = -1
    cmem_len: int = -1
    valid_windows: int = 50         # windows per validation pass during training (0: the whole split)
    dynamic_lr: float = 1e-4        # naive dynamic evaluation's learning rate (SGD on each scored window)

    def __post_init__(self):
        if self.split not in ("train", "valid", "test"):
            raise ConfigError(f"eval.split must be train, valid or test, got {self.split!r}")
        if self.batch_size < 1:
            raise ConfigError(f"eval.batch_size must be >= 1, got {self.batch_size}")
        for name in ("mem_len", "cmem_len"):
            if getattr(self, name) < -1:
                raise ConfigError(f"eval.{name} must be -1 (as trained) or >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class TextConfig:
    preset: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
