#!/usr/bin/env python3
"""Mutation check: plant each known bug on purpose and show that a test catches it (issue 11).

Each entry of REGISTRY names a deliberate bug: the file, an exact snippet of the current source (found
exactly once), what it becomes, and the pytest node ids that must go red; optional alternatives give the
same bug where the code reads otherwise (a branch about to land), tried in order. The script copies the
working tree (the files git tracks plus untracked ones it does not ignore) into a temporary folder, so
the real tree is never edited; there it runs the named tests once unmutated (they must pass), then
for each mutation: writes the mutated file, runs the tests, writes the original back (try/finally,
also on Ctrl-C). A `shared` link next to the copy points at ../shared, so tests on the real data run.

    scripts/mutation_check.py                 # every mutation; table on stdout
    scripts/mutation_check.py --only sample-forgets-generated --only word-ppl-per-token
    scripts/mutation_check.py --list

Exit status: 0 when every mutation is caught; 1 when one survives, its snippet is stale (not found
exactly once: the source moved on, update the registry) or its tests error out; 2 when the tests fail
before any mutation.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GUARDS = "tests/text/test_text_eval_guards.py::"
RESUME = "tests/text/test_text_resume_metrics.py::"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str               # relative to the repository root
    original: str           # must occur exactly once in `file`
    mutated: str
    tests: tuple[str, ...]  # pytest node ids, relative to the repository root
    # the same bug where the code reads otherwise (a branch about to land): (file, original, mutated),
    # tried in order when `original` is not found exactly once
    alternatives: tuple[tuple[str, str, str], ...] = ()

    def variants(self) -> tuple[tuple[str, str, str], ...]:
        return ((self.file, self.original, self.mutated), *self.alternatives)


def applicable(m: Mutation, root: Path) -> tuple[tuple[str, str, str] | None, str]:
    """(the first variant whose snippet stands exactly once in its file, ""), or (None, why none does)."""
    why = []
    for variant in m.variants():
        file, original, _ = variant
        path = root / file
        if not path.is_file():
            why.append(f"{file} does not exist")
            continue
        n = path.read_text().count(original)
        if n == 1:
            return variant, ""
        where = "not found" if n == 0 else f"found {n} times"
        why.append(f"snippet {where} in {file}: {original.strip().splitlines()[0]!r}")
    return None, "; ".join(why)


REGISTRY: tuple[Mutation, ...] = (
    Mutation(
        "metrics-not-trimmed-on-resume", "core/run/trainer.py",
        'self.metrics.keep_first(counters["metrics_lines"])', "pass",
        (RESUME + "test_metrics_after_crash_and_resume_equal_an_uninterrupted_run[1]",)),
    Mutation(
        "log-interval-not-resumed", "core/run/trainer.py",
        "counters = {k: ckpt.get(k, v) for k, v in counters.items()}",
        'counters = {k: v if k.startswith("log_") else ckpt.get(k, v) for k, v in counters.items()}',
        (RESUME + "test_metrics_after_crash_and_resume_equal_an_uninterrupted_run[2]",
         "tests/core/test_run_trainer.py::test_metrics_after_a_mid_interval_resume_equal_the_unbroken_run")),
    Mutation(
        "rerun-appends-to-old-metrics", "core/run/trainer.py",
        "self.metrics.keep_first(0)      #", "pass      #",
        ("tests/text/test_text_resume.py::test_rerun_after_a_crash_before_the_first_checkpoint_starts_a_fresh_file",)),
    Mutation(
        "refused-resume-rewrites-config", "text/run.py",
        "summary = Trainer(task, cfg.train, run_path, dist).fit(resume=resume, on_ready=write_config)",
        "summary = write_config() or Trainer(task, cfg.train, run_path, dist).fit(resume=resume)",
        ("tests/text/test_text_resume.py::test_refused_resume_changes_nothing",)),
    Mutation(
        "partial-eval-replaces-headline", "text/run.py",
        "out = Path(run_dir) / PARTIAL_EVAL if max_windows else Path(run_dir)", "out = Path(run_dir)",
        ("tests/text/test_text_cli.py::test_partial_eval_does_not_replace_the_headline",)),
    Mutation(
        "prepare-ignores-ctbench-data", "text/data/__init__.py",
        'return Path(given or os.environ.get("CTBENCH_DATA", "") or DEFAULT_DATA_DIR).expanduser()',
        "return Path(given or DEFAULT_DATA_DIR).expanduser()",
        ("tests/text/test_text_cli.py::test_prepare_honours_ctbench_data_and_says_where",)),
    Mutation(
        "eval-no-reset-at-doc-start", "text/evaluate.py",
        "reset = _reset_rows(starts_row + s, doc_starts)",
        "reset = None",
        (GUARDS + "test_eval_empties_the_memory_at_document_starts",
         GUARDS + "test_eval_command_empties_the_memory_at_document_starts")),
    Mutation(
        "eval-resets-only-the-first-row", "text/evaluate.py",
        "hit = np.isin(starts, doc_starts) & (starts > 0)",
        "hit = np.isin(starts, doc_starts) & (starts > 0) & (np.arange(len(starts)) == 0)",
        (GUARDS + "test_eval_empties_the_memory_at_document_starts[3]",)),
    Mutation(
        "eval-command-drops-doc-starts", "text/run.py",
        "doc_starts=ds.doc_starts(split) if cfg.data.reset_at_doc else None,",
        "doc_starts=None,",
        (GUARDS + "test_eval_command_empties_the_memory_at_document_starts",)),
    Mutation(
        "validation-no-reset-at-doc-start", "text/task.py",
        'doc_starts=self.ds.doc_starts("valid") if self.cfg.data.reset_at_doc else None,',
        "doc_starts=None,",
        (GUARDS + "test_validation_during_training_empties_the_memory_at_document_starts",)),
    Mutation(
        "dynamic-eval-learns-before-scoring", "text/evaluate.py",
        "            out = model(x, state, y, reset=reset, return_attention=stats is not None)\n",
        "            if dynamic:  # MUTATION: learn from the window, then score it\n"
        "                model(x, state, y, reset=reset).nll.mean().backward()\n"
        "                opt.step()\n"
        "                opt.zero_grad(set_to_none=True)\n"
        "            out = model(x, state, y, reset=reset, return_attention=stats is not None)\n",
        (GUARDS + "test_dynamic_eval_scores_each_window_before_learning_from_it",)),
    Mutation(
        "word-ppl-per-token", "text/run.py",
        'return "word_ppl", math.exp(result.nats / words), extras',
        'return "word_ppl", math.exp(result.loss), extras',
        (GUARDS + "test_word_perplexity_divides_by_words_not_tokens",)),
    Mutation(
        "dropout-on-in-eval", "text/evaluate.py",
        "    was_training = model.training\n    model.eval()\n",
        "    was_training = model.training\n",
        (GUARDS + "test_evaluation_turns_dropout_off_and_restores_the_mode",)),
    Mutation(
        "dropout-on-in-sample", "text/run.py",
        "task.model.to(device).eval()",
        "task.model.to(device)",
        (GUARDS + "test_sample_carries_its_memory",)),
    Mutation(
        "sample-forgets-generated", "text/run.py",
        "logp, state, cache = model.next_token_logprobs(last, state, cache)",
        "logp, _, _ = model.next_token_logprobs(last, state, cache)",
        (GUARDS + "test_sample_carries_its_memory",)),
    Mutation(
        "sample-forgets-prompt", "text/run.py",
        "_, state, cache = model.next_token_logprobs(chunk, state, cache)",
        "_, _, _ = model.next_token_logprobs(chunk, state, cache)",
        (GUARDS + "test_sample_carries_its_memory",)),
    # core semantics
    Mutation(
        "same-length-limited-to-the-filled-memory", "core/attention.py",
        "allowed = allowed & (j > prefix + i - reach)", "allowed = allowed & (j > i)",
        ("tests/core/test_semantics.py::test_same_length_mask_is_transformerxls_while_the_memory_fills",)),
    Mutation(
        "float32-sinusoids-in-float64", "core/attention.py",
        "dtype = torch.promote_types(distances.dtype, torch.float32)", "dtype = torch.float32",
        ("tests/core/test_semantics.py::test_float64_model_gets_float64_sinusoids",)),
    Mutation(
        "most-used-picks-the-first", "core/compression.py",
        "pick = usage.view(usage.shape[0], -1, self.rate).argmax(dim=-1)",
        "pick = usage.view(usage.shape[0], -1, self.rate).argmax(dim=-1) * 0",
        ("tests/core/test_semantics.py::test_most_used_is_group_local_but_not_window_invariant",)),
    Mutation(
        "cache-misaligned-positions", "core/cache.py",
        "return self.r[:, self.n_distances - n_keys:]", "return self.r[:, self.n_distances - n_keys + 1:]",
        ("tests/core/test_generation_cache.py::test_cached_sampling_equals_uncached_float64",)),
    # speech
    Mutation(
        "speech-codes-as-int64", "speech/mulaw.py",
        ".clamp(0, mu).to(torch.uint8 if mu <= 255 else torch.int64)", ".clamp(0, mu).to(torch.int64)",
        ("tests/speech/test_speech_data.py::test_audio_is_held_as_one_byte_per_sample",)),
    Mutation(
        "speech-sample-forgets-memory", "speech/generate.py",
        "        _, state, cache = _read(model, prime[:, i * window:(i + 1) * window], state, cache)",
        "        _read(model, prime[:, i * window:(i + 1) * window], state, cache)",
        ("tests/speech/test_speech_train.py::test_transformer_sample_uses_memories",)),
    Mutation(
        "speech-bench-times-prefill", "speech/bench.py",
        "    return n / (seconds(n + 1) - seconds(1))", "    return n / seconds(n)",
        ("tests/speech/test_speech_bench.py::test_generation_rate_excludes_wavenet_prefill",)),
    # rl
    Mutation(
        "rl-dead-actor-buffers-lost", "rl/impala.py",
        "            self.free.extend(self.held[i])", "            self.free.extend([])",
        ("tests/rl/test_rl_impala.py::test_actors_killed_at_random_moments_never_wedge_the_learner",)),
    Mutation(
        "rl-too-few-buffers-accepted", "rl/config.py",
        "        if self.num_buffers and self.num_buffers < self.batch_size:",
        "        if self.num_buffers and self.num_buffers < self.batch_size - 1:",
        ("tests/rl/test_rl_config.py::test_fewer_buffers_than_a_batch_is_refused_naming_the_field",)),
    Mutation(
        "rl-ray-left-running-after-a-failed-start", "rl/ray_backend.py",
        "            self.close()  # the caller gets no object to close", "            pass  # the caller gets no object to close",
        ("tests/rl/test_rl_impala.py::test_ray_instance_is_shut_down_on_every_exit_path",)),
    Mutation(
        "rl-human-normalised-without-random", "rl/envs/dmlab.py",
        "    return 100.0 * (episode_return - random) / (human - random)",
        "    return 100.0 * (episode_return - random) / human",
        ("tests/rl/test_rl_envs.py::test_human_normalised_score_against_published_points",)),
    Mutation(
        "text-seed-leaves-data-order", "text/task.py",
        "offset=stream_offset(self.cfg.train.seed, len(tokens)))", "offset=0)",
        ("tests/text/test_text_train.py::test_the_training_seed_sets_the_data_order",)),
    Mutation(
        "speech-seed-leaves-data-order", "speech/task.py",
        "return data_seed * 1009 + train_seed * 100_003 + rank", "return data_seed * 1009 + rank",
        ("tests/speech/test_speech_train.py::test_the_training_seed_sets_the_data_order_and_resume_checks_it",)),
    Mutation(
        "ablation-unpaired-seeds", "analysis/tables.py",
        "return rules.verdict(*self.paired(), lower_better=True)",
        "return rules.verdict(self.base, self.other, lower_better=True)",
        ("tests/analysis/test_ablations.py::test_an_unpaired_seed_does_not_enter_the_difference",)),
    Mutation(
        "wikitext-trains-on-its-valid-split", "text/data/wikitext.py",
        "b.add_split(\"train\", ids[:cut], starts[starts < cut]",
        "b.add_split(\"train\", ids, starts",
        ("tests/text/test_data_sources.py::test_wikitext2_validation_file_prepares",)),
    Mutation(
        "table7-first-seed-only", "analysis/tables.py",
        "if (st := arm_frequency_stats(arm)) is not None}",
        "if (st := (*frequency_stats(arm.first), 1)) is not None}",
        ("tests/analysis/test_tables.py::test_rare_word_claim_is_judged_in_bits_over_seeds",)),
    Mutation(
        "two-trained-settings-no-pair", "analysis/rules.py",
        "if matches and one_to_one:",
        "if len(matches) == 1:",
        ("tests/analysis/test_claims.py::test_a_preset_and_its_longer_version_are_two_pairs_named_by_preset",)),
    Mutation(
        "suite-skips-interrupted-training", "ctbench/suite.py",
        'return json.loads(created.read_text()).get("interrupted") is not True',
        "return True",
        ("tests/analysis/test_suite.py::test_an_interrupted_training_is_resumed_not_taken_as_done",)),
    Mutation(
        "two-trainings-one-run-directory", "core/run/io.py",
        "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", "pass",
        ("tests/core/test_run_trainer.py::test_a_second_training_of_the_same_run_directory_stops_with_a_message",
         "tests/rl/test_rl_impala.py::test_a_second_learner_on_the_same_run_directory_stops_before_starting_actors")),
    Mutation(
        "sweep-run-takes-the-designated-ct", "analysis/rules.py",
        "matches = [(c, t) for c, t in matches if trained_as_preset(c.first) is not False] or matches",
        "pass",
        ("tests/analysis/test_claims.py::test_the_designated_ct_is_the_one_trained_as_its_preset_stands",)),
    Mutation(
        "suite-runs-a-step-finished-meanwhile", "ctbench/suite.py",
        "        p = current(suite, p.step)\n        if p.status == \"done\":",
        "        if False:",
        ("tests/analysis/test_suite.py::test_a_step_another_suite_finished_meanwhile_is_not_run_again",)),
    Mutation(
        "publish-drops-table7-sums", "scripts/publish_runs.py",
        "    compact = frequency_file(run)\n",
        "    compact = None\n",
        ("tests/test_publish_runs.py::test_word_level_run_keeps_its_table7_sums",)),
    Mutation(
        "remention-shows-one-pair-per-dataset", "analysis/tables.py",
        "        if len(pairs) > 1:\n            # a preset and its longer", "        if False:\n            # a preset and its longer",
        ("tests/analysis/test_remention_table.py::test_a_preset_and_its_longer_version_get_a_table_and_a_claim_each",)),
    Mutation(
        "ablation-claims-not-named-by-preset", "analysis/claims.py",
        "f\"{_preset_of(a.runs[0], per_split[(a.dataset, a.split)])})\",", "\")\",",
        ("tests/analysis/test_ablations.py::test_a_preset_and_its_longer_version_are_named_apart",)),
    Mutation(
        "seed-estimate-ignores-seed0-twin", "ctbench/suite.py",
        "for candidate in dict.fromkeys((name, *siblings, base)):", "for candidate in dict.fromkeys((name, *siblings)):",
        ("tests/analysis/test_suite.py::test_dry_run_estimates_wall_time_from_measured_runs_and_resumes",)),
    Mutation(
        "seed-estimate-ignores-siblings", "ctbench/suite.py",
        "for candidate in dict.fromkeys((name, *siblings, base)):", "for candidate in dict.fromkeys((name, base)):",
        ("tests/analysis/test_suite.py::test_dry_run_estimates_wall_time_from_measured_runs_and_resumes",)),
    Mutation(
        "t5-refutation-hidden-by-one-seed", "analysis/claims.py",
        'order = ["NOT reproduced", rules.NO_VERDICT, "tie", "reproduced"]',
        'order = [rules.NO_VERDICT, "NOT reproduced", "tie", "reproduced"]',
        ("tests/analysis/test_claims.py::test_one_compressor_that_beats_conv_attention_over_seeds_refutes_the_claim",)),
    Mutation(
        "precision-splits-seeds", "analysis/rules.py",
        '"crash_actor", "crash_at_unroll", "valid_windows", "max_time_s",\n                      "precision"})',
        '"crash_actor", "crash_at_unroll", "valid_windows", "max_time_s"})',
        ("tests/analysis/test_claims.py::test_seeds_trained_in_different_precisions_are_one_arm",)),
    Mutation(
        "suite-args-not-expanded", "ctbench/suite.py", "return ARGS.sub(sub, text)", "return text",
        ("tests/analysis/test_suite.py::test_named_args_are_written_once_and_expanded_into_every_step",)),
    Mutation(
        "rl-late-return-unweighted", "analysis/figures.py",
        "return float((late.episode_return * late.n).sum() / late.n.sum())", "return float(late.episode_return.mean())",
        ("tests/analysis/test_claims.py::test_rl_row_shows_the_return_over_the_last_tenth_of_frames_weighted_by_episodes",)),
    Mutation(
        "wavenet-carry-tail-from-window-only", "speech/wavenet.py",
        "after.append(seq[:, :, seq.shape[2] - L:].detach())", "after.append(x[:, :, max(x.shape[2] - L, 0):].detach())",
        ("tests/speech/test_speech_wavenet.py::test_carried_tails_give_the_logits_of_rereading_and_of_the_whole_stream",)),
    Mutation(
        "wavenet-carry-ignores-reset", "speech/models.py",
        "                tails = [torch.where(rows, s, t) for s, t in zip(self._silence_tails(inputs.device), tails)]",
        "                pass",
        ("tests/speech/test_speech_wavenet.py::test_carried_tails_give_the_logits_of_rereading_and_of_the_whole_stream",)),
    Mutation(
        "profile-casts-counted-as-copies", "core/profile.py",
        "for c in (name, *callers[:2])):\n        return \"cast\"",
        "for c in (name, *callers[:2])):\n        return \"copy / join / zero\"",
        ("tests/core/test_bench_profile.py::test_each_operator_goes_to_its_category[aten::copy_-callers2-cast]",
         "tests/core/test_bench_profile.py::test_categories_add_up_to_the_self_time_of_every_operator")),
)


@dataclass
class Outcome:
    name: str
    status: str             # caught | SURVIVED | STALE | ERROR
    detail: str             # the failing test, or why not
    seconds: float = 0.0
    file: str = ""          # the file mutated (its first variant found)

    @property
    def ok(self) -> bool:
        return self.status == "caught"


def tree_files(repo: Path) -> list[str]:
    """Tracked files and untracked ones git does not ignore (what a fresh checkout plus your edits holds)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                         check=True, capture_output=True).stdout.decode()
    return sorted({f for f in out.split("\0") if f and (repo / f).is_file()})


def copy_tree(repo: Path, dest: Path) -> Path:
    """dest/repo: a copy of the working tree; dest/shared -> the real ../shared (the tests' data)."""
    root = dest / "repo"
    for f in tree_files(repo):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / f, root / f)
    if (repo.parent / "shared").exists():
        (dest / "shared").symlink_to((repo.parent / "shared").resolve(), target_is_directory=True)
    return root


def run_tests(root: Path, tests: list[str], timeout: float) -> tuple[int, str]:
    """(pytest exit code, output); stops at the first failure."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "400"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-rfE", "-p", "no:cacheprovider", *tests]
    try:
        p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f} s"
    return p.returncode, p.stdout + p.stderr


def first_failure(output: str, width: int = 70) -> str:
    """`node id: reason` of the first failure in pytest's -rfE summary."""
    m = re.search(r"^(?:FAILED|ERROR) (\S+)(?: - (.*))?$", output, re.MULTILINE)
    if not m:
        return "?"
    reason = (m.group(2) or "").strip()
    return (m.group(1) + (f": {reason[:width]}" if reason else "")).replace("|", "/")


def check(mutation: Mutation, root: Path, timeout: float) -> Outcome:
    variant, why = applicable(mutation, root)
    if variant is None:
        return Outcome(mutation.name, "STALE", why)
    file, original, mutated = variant
    path = root / file
    text = path.read_text()
    t0 = time.time()
    try:
        path.write_text(text.replace(original, mutated))
        rc, output = run_tests(root, list(mutation.tests), timeout)
    finally:
        path.write_text(text)
    seconds = time.time() - t0
    if rc == 1:
        return Outcome(mutation.name, "caught", first_failure(output), seconds, file)
    if rc == 0:
        return Outcome(mutation.name, "SURVIVED", "passed: " + ", ".join(mutation.tests), seconds, file)
    return Outcome(mutation.name, "ERROR", f"pytest exit code {rc}: {output.strip().splitlines()[-1:]}", seconds, file)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| mutation | caught? | test | file | s |", "|---|---|---|---|---|"]
    rows += [f"| {o.name} | {o.status} | {o.detail} | {o.file or '-'} | {o.seconds:.0f} |" for o in outcomes]
    return "\n".join(rows)


def main(argv: list[str] | None = None, registry: tuple[Mutation, ...] = REGISTRY, repo: Path = REPO) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="run only this mutation (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the mutations and their tests, then exit")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the tests")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per pytest run (default 600)")
    args = ap.parse_args(argv)
    names = [m.name for m in registry]
    unknown = [n for n in args.only if n not in names]
    if unknown:
        ap.error(f"unknown mutation(s) {', '.join(unknown)}; known: {', '.join(names)}")
    chosen = [m for m in registry if not args.only or m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name}  ({m.file})\n    " + "\n    ".join(m.tests))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="ctbench-mutations-"))
    try:
        root = copy_tree(repo, tmp)
        if not args.no_baseline:
            tests = list(dict.fromkeys(t for m in chosen for t in m.tests))
            rc, output = run_tests(root, tests, args.timeout)
            if rc != 0:
                print(output[-3000:])
                print(f"the tests fail (exit {rc}) before any mutation: fix them first", file=sys.stderr)
                return 2
        outcomes = []
        for m in chosen:
            outcomes.append(check(m, root, args.timeout))
            print(f"{m.name}: {outcomes[-1].status}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(outcomes))
    bad = [o for o in outcomes if not o.ok]
    for o in bad:
        print(f"{o.name}: {o.status}: {o.detail}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
