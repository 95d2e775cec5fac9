"""ctbench core: the Compressive Transformer memory module shared by every domain.

    from core import CTConfig, CompressiveTransformer
    model = CompressiveTransformer(CTConfig(d_model=256, n_layers=4, n_heads=4, d_ff=1024,
                                            mem_len=128, cmem_len=128, compression_rate=3))
    mem = model.init_memory(batch_size=8)
    out = model(x, mem)          # x: [B, T, d]; out.hidden, out.memory, out.aux_loss, out.attention

TransformerXL is the same code path with ``cmem_len=0``.
"""
from .cache import KVCache, LayerCache
from .compression import COMPRESSORS, build_compressor
from .config import COMPRESSION_LOSSES, COMPRESSIONS, CTConfig
from .flops import count_parameters, flops_per_token
from .memory import LayerMemory, Memory
from .transformer import CompressiveTransformer, CTOutput

__all__ = ["CTConfig", "CompressiveTransformer", "CTOutput", "Memory", "LayerMemory", "KVCache", "LayerCache",
           "COMPRESSORS", "COMPRESSIONS", "COMPRESSION_LOSSES", "build_compressor", "count_parameters", "flops_per_token"]
