import numpy as np
import pytest
import torch

from text.data import StreamBatcher


def windows(b):
    return [(x.clone(), y.clone(), r.clone()) for x, y, r in b]


def test_shapes_targets_and_contiguity():
    tokens = np.arange(1000, dtype=np.int64)
    b = StreamBatcher(tokens, batch_size=4, window=10)
    assert len(b) == (250 - 1) // 10
    ws = windows(b)
    assert len(ws) == len(b)
    for i, (x, y, r) in enumerate(ws):
        assert x.shape == (4, 10) and y.shape == (4, 10) and r.shape == (4,)
        assert x.dtype == torch.int64 and y.dtype == torch.int64 and r.dtype == torch.bool
        assert torch.equal(y, x + 1)  # targets are the next tokens
        assert torch.equal(x[:, 0], torch.arange(4) * 250 + i * 10)
        assert torch.equal(b.target_positions(i), y)  # tokens == positions here
    # each row continues its own contiguous part window after window (memory flows along it)
    rows = torch.cat([x for x, _, _ in ws], dim=1)
    for row in range(4):
        assert torch.equal(rows[row], torch.arange(row * 250, row * 250 + 240))


def test_reset_flags_follow_document_starts():
    tokens = np.arange(1000)
    b = StreamBatcher(tokens, batch_size=4, window=10, doc_starts=[0, 270, 530, 531, 999])
    flags = torch.stack([r for _, _, r in b])  # [windows, B]
    expected = torch.zeros_like(flags)
    expected[0, 0] = True      # 0: row 0, window 0
    expected[2, 1] = True      # 270 = 250 + 2 * 10
    expected[3, 2] = True      # 530 = 500 + 3 * 10; 531 is mid-window
    assert torch.equal(flags, expected)
    no_docs = StreamBatcher(tokens, batch_size=4, window=10)
    assert not any(r.any() for _, _, r in no_docs)


def test_exact_resume_and_epochs():
    tokens = np.random.default_rng(0).integers(0, 50, size=5000)
    full = windows(StreamBatcher(tokens, 3, 16))
    b = StreamBatcher(tokens, 3, 16)
    it = iter(b)
    for _ in range(7):
        next(it)
    state = b.state_dict()
    resumed = StreamBatcher(tokens, 3, 16)
    resumed.load_state_dict(state)
    rest = windows(resumed)
    assert len(rest) == len(full) - 7
    for (x, y, r), (fx, fy, fr) in zip(rest, full[7:]):
        assert torch.equal(x, fx) and torch.equal(y, fy) and torch.equal(r, fr)
    started = windows(StreamBatcher(tokens, 3, 16, start_step=7))
    assert all(torch.equal(a[0], c[0]) for a, c in zip(started, full[7:]))
    # after a whole pass the next epoch starts from the beginning
    assert resumed.state_dict()["step"] == 0 and resumed.state_dict()["epoch"] == 1
    again = windows(resumed)
    assert torch.equal(again[0][0], full[0][0])


def test_bad_geometry_and_foreign_state():
    with pytest.raises(ValueError, match="too short"):
        StreamBatcher(np.arange(100), batch_size=8, window=16)
    b = StreamBatcher(np.arange(1000), 4, 10)
    with pytest.raises(ValueError, match="another stream layout"):
        StreamBatcher(np.arange(1000), 2, 10).load_state_dict(b.state_dict())
    with pytest.raises(ValueError, match="step"):
        b.load_state_dict({**b.state_dict(), "step": 10_000})


def test_partial_last_window_covers_every_target():
    tokens = np.arange(1003)
    b = StreamBatcher(tokens, 2, 64, drop_last=False)
    targets = torch.cat([y for _, y, _ in b], dim=1)
    assert targets.shape == (2, 500)  # each part of 501 tokens predicts its last 500
    assert torch.equal(torch.cat([b.target_positions(i) for i in range(len(b))], dim=1), targets)
    assert torch.equal(targets[1], torch.arange(502, 1002))


def test_ranks_split_the_streams():
    tokens = np.arange(4000)
    whole = windows(StreamBatcher(tokens, 4, 8))
    r0 = windows(StreamBatcher(tokens, 2, 8, rank=0, world_size=2))
    r1 = windows(StreamBatcher(tokens, 2, 8, rank=1, world_size=2))
    for (x, _, _), (a, _, _), (c, _, _) in zip(whole, r0, r1):
        assert torch.equal(x, torch.cat([a, c]))


def test_memory_mapped_tokens(tmp_path):
    arr = np.arange(600, dtype=np.uint16)
    np.save(tmp_path / "t.npy", arr)
    mm = np.load(tmp_path / "t.npy", mmap_mode="r")
    x, y, _ = next(iter(StreamBatcher(mm, 2, 5)))
    assert torch.equal(x, torch.tensor([[0, 1, 2, 3, 4], [300, 301, 302, 303, 304]]))


def test_offset_rotates_the_split_and_wraps_contiguously():
    tokens = np.arange(1000)
    b = StreamBatcher(tokens, batch_size=4, window=10, offset=920, doc_starts=[500])
    rows = torch.cat([x for x, _, _ in b], dim=1)
    for row in range(4):   # row b reads the rotated split from offset + b * 250, past the end to the start
        assert torch.equal(rows[row], (920 + row * 250 + torch.arange(240)) % 1000)
    for i in range(len(b)):
        x, y, reset = b.window_at(i)
        assert torch.equal(y, (x + 1) % 1000) and torch.equal(b.target_positions(i), y)
    flags = torch.stack([r for _, _, r in b])
    assert flags.nonzero().tolist() == [[8, 0], [8, 2]]   # the wrap point (0 = 920 + 80) and 500 = 420 + 80
    with pytest.raises(ValueError, match="offset 920 there, 0 here"):
        StreamBatcher(tokens, 4, 10).load_state_dict(b.state_dict())


def test_seeds_pick_different_offsets_and_seed_0_none():
    from text.data.batching import stream_offset
    assert stream_offset(0, 10_000) == 0
    offsets = {stream_offset(seed, 10_000) for seed in (1, 2, 3)}
    assert len(offsets) == 3 and all(0 < o < 10_000 for o in offsets)
    assert stream_offset(1, 10_000) == stream_offset(1, 10_000)
