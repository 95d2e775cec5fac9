"""CTConfig: the hyper-parameters of one Compressive Transformer stack (Rae et al., 2020, Section 3).

The TransformerXL (Dai et al., 2019) is the special case ``cmem_len=0``; a vanilla Transformer is
``mem_len=0, cmem_len=0``. Every field is validated at construction, and an error names the field.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

COMPRESSIONS = ("max_pool", "mean_pool", "conv", "dilated_conv", "most_used", "gru")
COMPRESSION_LOSSES = ("attention", "autoencoding", "bptt", "none")
# Compressors without parameters cannot learn from any loss.
PARAMETER_FREE = ("max_pool", "mean_pool", "most_used")


@dataclass(frozen=True)
class CTConfig:
    """Hyper-parameters of the layer stack.

    Args:
        d_model: width of the residual stream, d.
        n_layers: number of layers, l.
        n_heads: attention heads H; must divide d_model.
        d_ff: inner width of the position-wise feed-forward block.
        mem_len: memory size n_m (per layer, in past layer inputs).
        cmem_len: compressed memory size n_cm (0: TransformerXL).
        compression_rate: c, memories per compressed slot; an int, or one int per layer (the paper's
            open question 1: different rates per layer).
        compression: compressor f_c, one of COMPRESSIONS.
        compression_loss: how f_c is trained, one of COMPRESSION_LOSSES.
        dropout: dropout on residual branches and positional embeddings.
        dropatt: dropout on attention probabilities.
        pre_ln: pre-LayerNorm blocks (the paper uses post-LN, the default).
        clamp_len: relative distances above this share one embedding (-1: no clamp).
        same_length: every query attends to the same number of keys (TransformerXL's option).
        layer_norm_eps: LayerNorm epsilon.
        compression_loss_weight: weight of the auxiliary compression loss in ``aux_loss``.
    """

    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    mem_len: int = 128
    cmem_len: int = 128
    compression_rate: int | tuple[int, ...] = 3
    compression: str = "conv"
    compression_loss: str = "attention"
    dropout: float = 0.1
    dropatt: float = 0.0
    pre_ln: bool = False
    clamp_len: int = -1
    same_length: bool = False
    layer_norm_eps: float = 1e-5
    compression_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.compression_rate, Sequence) and not isinstance(self.compression_rate, str):
            object.__setattr__(self, "compression_rate", tuple(int(r) for r in self.compression_rate))
        for name in ("d_model", "n_layers", "n_heads", "d_ff"):
            _require(isinstance(getattr(self, name), int) and getattr(self, name) > 0, name,
                     f"must be a positive integer, got {getattr(self, name)!r}")
        for name in ("mem_len", "cmem_len"):
            _require(isinstance(getattr(self, name), int) and getattr(self, name) >= 0, name,
                     f"must be a non-negative integer, got {getattr(self, name)!r}")
        _require(self.d_model % self.n_heads == 0, "n_heads",
                 f"n_heads={self.n_heads} must divide d_model={self.d_model}")
        rates = self.compression_rates
        _require(len(rates) == self.n_layers, "compression_rate",
                 f"needs one rate per layer ({self.n_layers}), got {len(rates)}")
        if self.cmem_len > 0:
            _require(all(isinstance(r, int) and r >= 1 for r in rates), "compression_rate",
                     f"must be >= 1 when cmem_len > 0, got {self.compression_rate!r}")
        _require(self.compression in COMPRESSIONS, "compression",
                 f"unknown compressor {self.compression!r}; choose one of {', '.join(COMPRESSIONS)}")
        _require(self.compression_loss in COMPRESSION_LOSSES, "compression_loss",
                 f"unknown loss {self.compression_loss!r}; choose one of {', '.join(COMPRESSION_LOSSES)}")
        for name in ("dropout", "dropatt"):
            _require(0.0 <= getattr(self, name) < 1.0, name, f"must lie in [0, 1), got {getattr(self, name)!r}")
        _require(isinstance(self.clamp_len, int) and (self.clamp_len == -1 or self.clamp_len > 0), "clamp_len",
                 f"must be -1 (off) or a positive integer, got {self.clamp_len!r}")
        _require(self.compression_loss_weight >= 0, "compression_loss_weight", "must be >= 0")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def compression_rates(self) -> tuple[int, ...]:
        """One compression rate per layer."""
        if isinstance(self.compression_rate, tuple):
            return self.compression_rate
        return (self.compression_rate,) * self.n_layers

    @property
    def compressive(self) -> bool:
        """False for the TransformerXL special case."""
        return self.cmem_len > 0

    @property
    def trains_compressor(self) -> bool:
        return self.compressive and self.compression not in PARAMETER_FREE and self.compression_loss != "none"

    def temporal_range(self, window: int) -> int:
        """The maximum temporal range in tokens for windows of length ``window`` (Section 3.1):
        each layer reaches n_cm * c + n_m + T back, and the stack compounds it over its layers."""
        per_layer = [self.mem_len + window + (self.cmem_len * c if self.compressive else 0)
                     for c in self.compression_rates]
        return sum(per_layer)

    def replace(self, **changes) -> "CTConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_fields(cls, source, **overrides) -> "CTConfig":
        """A CTConfig from a domain's config: every attribute of ``source`` named like a CTConfig field
        (others are ignored), then ``overrides``. A field added here reaches every domain that declares it."""
        values = {f.name: getattr(source, f.name) for f in dataclasses.fields(cls) if hasattr(source, f.name)}
        return cls(**{**values, **overrides})


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"CTConfig.{name}: {message}")
