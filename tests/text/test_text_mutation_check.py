"""scripts/mutation_check.py: its registry matches the source, and it tells caught, survived and stale
mutations apart (the full run, every mutation: `scripts/mutation_check.py`, about 3 minutes)."""
import importlib.util
import re
import sys

import pytest

from text_data_fixtures import REPO

spec = importlib.util.spec_from_file_location("mutation_check", REPO / "scripts" / "mutation_check.py")
mc = sys.modules[spec.name] = importlib.util.module_from_spec(spec)   # dataclasses look it up there
spec.loader.exec_module(mc)


@pytest.mark.parametrize("m", mc.REGISTRY, ids=lambda m: m.name)
def test_registry_matches_the_source(m):
    """A snippet of each mutation stands exactly once in its file and each named test exists (a stale
    registry fails here first, cheaply)."""
    variant, why = mc.applicable(m, REPO)
    assert variant is not None, f"{m.name}: {why}"
    assert all(mutated != original for _, original, mutated in m.variants()) and m.tests
    for node in m.tests:
        path, name = node.split("::", 1)   # a parameter id may hold "::" (aten::copy_)
        assert re.search(rf"^def {re.escape(name.split('[')[0])}\(", (REPO / path).read_text(), re.MULTILINE), node


def test_a_stale_snippet_is_named_and_fails(capsys):
    stale = mc.Mutation("stale-one", "text/evaluate.py", "no such line in the file", "x", ("tests/text",))
    assert mc.main(["--no-baseline"], registry=(stale,)) == 1
    captured = capsys.readouterr()
    assert "| stale-one | STALE | snippet not found in text/evaluate.py: 'no such line in the file' | - |" in captured.out
    assert "stale-one: STALE" in captured.err


def test_an_alternative_applies_where_the_first_snippet_is_gone():
    word_ppl = next(m for m in mc.REGISTRY if m.name == "word-ppl-per-token")
    moved = mc.Mutation("moved", "text/evaluate.py", "a line since rewritten", "x", word_ppl.tests,
                        (("text/run.py", word_ppl.original, word_ppl.mutated),))
    assert mc.applicable(moved, REPO) == (("text/run.py", word_ppl.original, word_ppl.mutated), "")


@pytest.mark.slow
def test_caught_and_surviving_mutations_are_told_apart(capsys):
    """One real mutation of the registry (caught), one harmless edit of a comment (survives: exit 1)."""
    caught = next(m for m in mc.REGISTRY if m.name == "eval-no-reset-at-doc-start")
    harmless = mc.Mutation("comment-only", caught.file, '"""Rows whose window begins exactly at a document start',
                           '"""Rows (edited docstring) whose window begins exactly at a document start', caught.tests[:1])
    assert mc.main([], registry=(caught, harmless)) == 1
    rows = {line.split(" | ")[0].lstrip("| "): line for line in capsys.readouterr().out.splitlines()}
    assert rows[caught.name].startswith(f"| {caught.name} | caught | {caught.tests[0]}[1]: AssertionError")
    assert rows["comment-only"].startswith(f"| comment-only | SURVIVED | passed: {caught.tests[0]} | text/evaluate.py |")
