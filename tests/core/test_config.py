"""CTConfig helpers."""
from types import SimpleNamespace

from core import CTConfig


def test_from_fields_takes_the_matching_attributes_then_the_overrides():
    source = SimpleNamespace(d_model=64, n_heads=2, mem_len=9, compression="mean_pool", arch="lstm", hidden=5)
    cfg = CTConfig.from_fields(source, mem_len=12)
    assert (cfg.d_model, cfg.n_heads, cfg.mem_len, cfg.compression) == (64, 2, 12, "mean_pool")
    assert cfg.n_layers == CTConfig().n_layers                     # not in source: CTConfig's default
