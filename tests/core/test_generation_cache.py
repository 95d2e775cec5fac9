"""The generation cache (core/cache.py) is the same computation as the uncached stack: equal logits and
samples, step by step, while the memories fill, overflow, compress and evict."""
import pytest
import torch

from core import CompressiveTransformer, CTConfig

VOCAB = 11
STEPS = 40          # mem 6 + cmem 4 x c 3 = 18 tokens fill both; 40 evict compressed slots too


def tiny_model(cmem_len, pre_ln, compression="conv", dtype=torch.float64, same_length=False, n_heads=2):
    torch.manual_seed(0)
    cfg = CTConfig(d_model=16, n_layers=2, n_heads=n_heads, d_ff=32, mem_len=6, cmem_len=cmem_len, compression_rate=3,
                   compression=compression, dropout=0.0, pre_ln=pre_ln, same_length=same_length)
    stack = CompressiveTransformer(cfg).to(dtype).eval()
    for p in stack.parameters():                        # non-zero biases u, v: every term of the score counts
        p.data.add_(0.1 * torch.randn_like(p))
    embed = torch.nn.Embedding(VOCAB, 16).to(dtype)
    head = torch.nn.Linear(16, VOCAB).to(dtype)
    return stack, embed, head


@torch.inference_mode()
def sample(stack, embed, head, cached, steps=STEPS, prompt=(5, 2)):
    """Reads a prompt in windows of `prompt` tokens, then samples one token at a time (each token a window
    of 1, as text sampling does). Returns (tokens [2, steps], logits [steps, 2, V], memory, cache)."""
    g = torch.Generator().manual_seed(1)
    memory = stack.init_memory(2, dtype=embed.weight.dtype)
    cache = stack.init_cache(memory) if cached else None
    windows = [torch.randint(VOCAB, (2, t), generator=g) for t in prompt]
    tokens, logits = [], []
    for step in range(len(windows) + steps - 1):
        inputs = windows[step] if step < len(windows) else tokens[-1]
        out = stack(embed(inputs), memory, kv_cache=cache)
        memory, cache = out.memory, out.kv_cache
        if step >= len(windows) - 1:
            logits.append(head(out.hidden[:, -1]))
            tokens.append(torch.multinomial(torch.softmax(logits[-1].double(), -1), 1, generator=g))
    return torch.cat(tokens, 1), torch.stack(logits), memory, cache


CASES = [(0, False, "conv"), (0, True, "conv"), (4, False, "conv"), (4, True, "conv"), (4, False, "most_used"),
         (4, True, "mean_pool")]


@pytest.mark.parametrize("cmem_len,pre_ln,compression", CASES)
def test_cached_sampling_equals_uncached_float64(cmem_len, pre_ln, compression):
    model = tiny_model(cmem_len, pre_ln, compression)
    tokens, logits, memory, _ = sample(*model, cached=False)
    tokens_c, logits_c, memory_c, cache = sample(*model, cached=True)
    assert memory.mem_len == 6 and memory.cmem_lens() == [cmem_len] * 2
    assert torch.equal(tokens, tokens_c)
    torch.testing.assert_close(logits_c, logits, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cmem_len,pre_ln", [(0, False), (4, True)])
def test_cached_sampling_same_tokens_float32(cmem_len, pre_ln):
    model = tiny_model(cmem_len, pre_ln, dtype=torch.float32)
    tokens, logits, _, _ = sample(*model, cached=False)
    tokens_c, logits_c, _, _ = sample(*model, cached=True)
    assert torch.equal(tokens, tokens_c)
    torch.testing.assert_close(logits_c, logits)


@pytest.mark.parametrize("cmem_len,pre_ln,compression", CASES)
def test_advanced_cache_equals_a_fresh_projection_of_the_memory(cmem_len, pre_ln, compression):
    """After every kind of update (slots entering, evicted, compressed, compressed slots evicted), the
    carried cache holds exactly the keys/values init_cache projects from the memory it travels with."""
    stack, embed, head = tiny_model(cmem_len, pre_ln, compression)
    for steps in (3, 7, 13, 20, 31):                     # stop at different points of the FIFOs' cycles
        _, _, memory, cache = sample(stack, embed, head, cached=True, steps=steps)
        with torch.inference_mode():
            fresh = stack.init_cache(memory)
        for got, want in zip(cache.layers, fresh.layers):
            assert got.n_cmem == want.n_cmem
            torch.testing.assert_close(torch.cat(got.k, 2), torch.cat(want.k, 2), rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(torch.cat(got.v, 2), torch.cat(want.v, 2), rtol=1e-12, atol=1e-12)


def test_same_length_and_windows_longer_than_the_memory():
    stack, embed, head = tiny_model(4, False, same_length=True)
    tokens, logits, _, _ = sample(stack, embed, head, cached=False, prompt=(9, 1, 14, 3))
    tokens_c, logits_c, _, _ = sample(stack, embed, head, cached=True, prompt=(9, 1, 14, 3))
    assert torch.equal(tokens, tokens_c)
    torch.testing.assert_close(logits_c, logits, rtol=1e-12, atol=1e-12)


def test_first_windows_with_fewer_keys_than_heads():
    stack, embed, head = tiny_model(4, True, n_heads=8)
    tokens, logits, _, _ = sample(stack, embed, head, cached=False, prompt=(1,))
    tokens_c, logits_c, _, _ = sample(stack, embed, head, cached=True, prompt=(1,))
    assert torch.equal(tokens, tokens_c)
    torch.testing.assert_close(logits_c, logits, rtol=1e-12, atol=1e-12)


def test_cache_is_refused_in_training_mode_with_gradients_or_for_another_memory():
    stack, embed, _ = tiny_model(4, False)
    memory = stack.init_memory(2, dtype=torch.float64)
    x = embed(torch.zeros(2, 3, dtype=torch.long)).detach()
    with torch.inference_mode():
        cache = stack.init_cache(memory)
        newer = stack(x, memory).memory
        with pytest.raises(ValueError, match="layer 0 caches 0 compressed slots and 0 memories"):
            stack(x, newer, kv_cache=cache)
    with pytest.raises(ValueError, match="generation only"):
        stack(x, memory, kv_cache=cache)                     # gradients on
    stack.train()
    with torch.inference_mode(), pytest.raises(ValueError, match="generation only"):
        stack(x, memory, kv_cache=cache)


def test_training_path_returns_no_cache():
    stack, embed, _ = tiny_model(4, True)
    out = stack(embed(torch.zeros(2, 3, dtype=torch.long)), stack.init_memory(2, dtype=torch.float64))
    assert out.kv_cache is None and out.hidden.requires_grad
