"""text/remention.py: words, distances back to the previous occurrence, bins; and the eval hook end to end
on the enwik8 prefix and the books folder of ../shared/data (skipped when absent)."""
import json

import numpy as np
import pytest

from text import remention as rm
from text.remention import FIRST, NO_WORD
from text_data_fixtures import no_download, shared  # noqa: F401

F, N = FIRST, NO_WORD


def test_byte_words_and_distances_by_hand():
    #         0123456789012345678901234
    text = b"the cat, the Cat; the cat"
    d = rm.byte_distances(np.frombuffer(text, dtype=np.uint8))
    want = ([F] * 3 + [N] + [F] * 3 + [N, N]      # "the" "cat" first
            + [9] * 3 + [N] + [F] * 3 + [N, N]    # "the" at 9 (9 - 0); "Cat" differs by case
            + [9] * 3 + [N] + [18] * 3)           # "the" at 18 (18 - 9); "cat" at 22 (22 - 4)
    assert d.tolist() == want


def test_byte_words_take_utf8_letters_and_digits():
    text = "café 42 café x42 42".encode()
    d = rm.byte_distances(text)
    # "café" is 5 bytes (é = 2 bytes >= 0x80): starts 0 and 9; "42" starts 6 and 19; "x42" is its own word
    assert d[0:5].tolist() == [F] * 5 and d[5] == N and d[9:14].tolist() == [9] * 5
    assert d[6:8].tolist() == [F, F] and d[19:21].tolist() == [13, 13] and d[15:18].tolist() == [F] * 3


def test_documents_reset_previous_occurrences():
    text = b"ab ab|ab ab"
    whole = rm.byte_distances(text)
    split = rm.byte_distances(text, doc_starts=[0, 5])
    assert whole.tolist() == [F, F, N, 3, 3, N, 3, 3, N, 3, 3]      # "|" is no word; "ab" at 6 is 3 after 3
    assert split.tolist() == [F, F, N, 3, 3, N, F, F, N, 3, 3]      # a new document forgets the first one


def test_a_word_never_spans_a_document_boundary():
    # "abab" would be one word without the boundary at 2: two words "ab" and "ab", the second a new document
    assert rm.byte_distances(b"abab", doc_starts=[0, 2]).tolist() == [F, F, F, F]
    assert rm.byte_distances(b"abab").tolist() == [F] * 4


# a tiny sentencepiece-like vocabulary: "▁" opens a word, <0xNN> are byte-fallback pieces
PIECES = ["<unk>", "<s>", "</s>", "<nl>", "▁the", "▁Hol", "mes", ",", "▁(", "▁", "<0xC3>", "<0xA9>", "▁dog", "s", "▁.",
          "Hol"]
BREAKS = [0, 1, 2, 3]
ID = {p: i for i, p in enumerate(PIECES)}


def ids(*pieces):
    return np.array([ID[p] for p in pieces])


def test_subword_words_by_hand():
    toks = ids("▁the", "▁Hol", "mes", ",", "▁dog", "<nl>",           # 0-5
               "▁(", "Hol", "mes", "▁the", "▁dog", "s", "▁.",        # 6-12
               "▁the", "▁", "<0xC3>", "<0xA9>", "▁", "<0xC3>", "<0xA9>")  # 13-19
    d = rm.subword_distances(toks, PIECES, BREAKS)
    assert d[:6].tolist() == [F, F, F, N, F, N]            # "," in no word; <nl> breaks
    # "(Holmes" strips to "Holmes": start = its first word piece "Hol" at 7 (not "▁(" at 6) -> 7 - 1
    assert d[6:9].tolist() == [N, 6, 6]
    assert d[9] == 9 - 0                                   # "the" at 9, previously at 0
    assert d[10:12].tolist() == [F, F]                     # "dogs" is not "dog"
    assert d[12] == N                                      # "." alone is no word
    assert d[13] == 4                                      # "the" at 13, previously at 9
    # "▁" then bytes C3 A9 ("é"): the word starts at the first byte piece (15); "▁" itself holds no word
    assert d[14:17].tolist() == [N, F, F] and d[17:20].tolist() == [N, 3, 3]


def test_subword_documents_and_breaks():
    toks = ids("▁the", "mes", "<nl>", "mes", "▁the", "▁the")
    d = rm.subword_distances(toks, PIECES, BREAKS, doc_starts=[0, 4])
    # "themes" (0-1) is one word; after <nl>, "mes" opens a word; the document at 4 resets "the"
    assert d.tolist() == [F, F, N, F, F, 1]
    assert rm.subword_distances(toks, PIECES, BREAKS).tolist() == [F, F, N, F, F, 1]
    assert rm.subword_distances(ids("▁the", "▁the"), PIECES, BREAKS, doc_starts=[0, 1]).tolist() == [F, F]


def test_word_level_tokens():
    symbols = ["<eos>", "<unk>", "the", "cat", ",", "@-@"]
    toks = np.array([2, 3, 4, 0, 2, 1, 1, 5, 3])
    d = rm.word_distances(toks, symbols, doc_starts=[0, 6])
    assert d.tolist() == [F, F, N, N, 4, N, N, N, F]


def test_histogram_sums_equal_the_per_token_values():
    rng = np.random.default_rng(0)
    dist = np.concatenate([rng.integers(1, 70_000, 500), [FIRST] * 7, [NO_WORD] * 5, [2, 16, 17, 100, 160, 200, 2 ** 20 + 1]])
    loss = rng.uniform(0, 5, len(dist))
    edges = rm.grid([96, 96 + 64, 96 + 64 + 4 * 32])
    h = rm.histogram(dist, loss, edges)
    bits = loss / np.log(2)
    assert sum(h["tokens"]) == 507 and h["first_mention"]["tokens"] == 7 and h["no_word"]["tokens"] == 5
    assert sum(h["bits_sum"]) + h["first_mention"]["bits_sum"] + h["no_word"]["bits_sum"] == pytest.approx(bits.sum())
    e = np.array(h["edges"])
    for i in (0, 1, 7, 200, len(e)):                     # bin i holds edges[i-1] < d <= edges[i]
        lo = e[i - 1] if i else 0
        m = (dist > lo) & ((dist <= e[i]) if i < len(e) else True)
        assert h["tokens"][i] == m.sum() and h["bits_sum"][i] == pytest.approx(bits[m].sum())
    assert h["tokens"][1] == 1 and h["tokens"][len(e)] == 1    # d=2 in (1, 2]; 2^20 + 1 in the open bin
    b = rm.rebucket(h, [96, 160, 288])
    assert [x["lo"] for x in b] == [0, 96, 160, 288] and [x["hi"] for x in b] == [96, 160, 288, None]
    for x in b:
        m = (dist > x["lo"]) & ((dist <= x["hi"]) if x["hi"] else True)
        assert x["tokens"] == m.sum() and x["bits"] == pytest.approx(bits[m].mean())
    with pytest.raises(ValueError, match=r"\[100\] are not bin edges"):
        rm.rebucket(h, [96, 100])


def test_reach_edges_and_grid():
    assert rm.reach_edges(768, 768, 1152, 3) == [768, 1536, 4992]
    assert rm.reach_edges(768, 1920, 0, 3) == [768, 2688]
    assert rm.reach_edges(64, 0, 0, 4) == [64]
    g = rm.grid([70])
    assert g[:6] == [1, 2, 4, 8, 16, 32] and 70 in g and 16384 in g and g[-1] == 2 ** 20 and g == sorted(set(g))


# ------------------------------------------------------------------------------- end to end (../shared/data)
TINY = ["model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.d_ff=32", "model.mem_len=16",
        "model.cmem_len=8", "model.compression_rate=2", "data.window=16", "train.batch_size=2", "train.steps=2",
        "train.log_every=1", "train.progress=false", "train.eval_every=0", "eval.valid_windows=2", "train.threads=1"]


def _train_eval(tmp_path, preset, extra, eval_args):
    from text.cli import main

    r = tmp_path / "run"
    sets = [a for kv in TINY + extra for a in ("--set", kv)]
    assert main(["train", "--preset", preset, "--run-dir", str(r), "--data-dir", str(tmp_path / "d"), *sets]) == 0
    assert main(["eval", "--run", str(r), "--no-progress", *eval_args]) == 0
    return r, json.loads((r / "results.json").read_text()), json.loads((r / "analysis" / "remention.json").read_text())


@pytest.mark.slow
def test_enwik8_eval_writes_the_remention_histogram(tmp_path):
    src = shared("enwik8_prefix") / "enwik8_first_4000000_bytes"
    r, res, rep = _train_eval(tmp_path, "cpu-books", ["data.dataset=enwik8", f"data.source={src}",
                                                      "data.allow_partial=true"], ["--batch-size", "64"])
    data = np.frombuffer(src.read_bytes(), dtype=np.uint8)
    test = data[len(data) - len(data) * 5 // 100:]
    assert rep["unit"] == "byte" and rep["reach_edges"] == [16, 32, 48] and res["remention"]["reach_edges"] == [16, 32, 48]
    scored = rep["overall"]["tokens"]
    assert scored == res["tokens_scored"] == sum(rep["tokens"]) + rep["first_mention"]["tokens"] + rep["no_word"]["tokens"]
    assert (sum(rep["bits_sum"]) + rep["first_mention"]["bits_sum"] + rep["no_word"]["bits_sum"]) / scored \
        == pytest.approx(res["value"], rel=1e-5)
    # the whole test split's distances, recounted here: the scored tokens are all but the seams
    dist = rm.byte_distances(test)
    assert abs(int((dist == NO_WORD).sum()) - rep["no_word"]["tokens"]) <= 64
    assert abs(int((dist > 48).sum()) - sum(b["tokens"] for b in res["remention"]["buckets"] if b["lo"] == 48)) <= 64
    # a real text has many re-mentions at every reach
    assert all(b["tokens"] > 1000 for b in res["remention"]["buckets"])


@pytest.mark.slow
def test_books_eval_writes_the_remention_histogram(tmp_path):
    src = shared("gutenberg")
    r, res, rep = _train_eval(tmp_path, "cpu-books", [f"data.dataset=books:{src}", "data.max_books=6",
                                                      "data.vocab_size=500"], ["--split", "test", "--batch-size", "8"])
    assert rep["unit"] == "subword" and rep["split"] == "test" and rep["dataset"].startswith("books:")
    assert rep["overall"]["tokens"] == res["tokens_scored"]
    assert rep["no_word"]["tokens"] > 0 and rep["first_mention"]["tokens"] > 0 and sum(rep["tokens"]) > 0


@pytest.mark.slow
def test_wikitext2_eval_writes_the_remention_histogram(tmp_path):
    src = shared("wikitext2")
    r, res, rep = _train_eval(tmp_path, "cpu-wikitext2", [f"data.source={src}"], ["--split", "valid", "--batch-size", "32"])
    assert rep["unit"] == "word" and rep["overall"]["tokens"] == res["tokens_scored"]
    # <eos> (one per line) and punctuation are in no word; "the" comes back within one window many times
    assert rep["no_word"]["tokens"] > 0.1 * res["tokens_scored"] and rep["tokens"][rm.grid().index(16)] > 0
