import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from core.run import Trainer, read_jsonl
from speech.cli import main as speech_main
from speech.config import load_speech_config
from speech.datasets import load_corpus
from speech.models import build_model
from speech.task import SpeechTask, evaluate, heldout_clips

from speech_helpers import TINY_CT, TINY_SYNTH, TINY_TRAIN, TINY_TXL, TINY_WN


@pytest.mark.parametrize("model", [TINY_CT, TINY_TXL, TINY_WN, TINY_WN + ["model.wavenet.context=\"carry\""]],
                         ids=["compressive", "transformerxl", "wavenet", "wavenet-carry"])
def test_three_models_train_through_the_one_trainer(tmp_path, model):
    cfg = load_speech_config("cpu-synth", model + TINY_TRAIN + TINY_SYNTH + ["train.steps=4", "train.eval_every=2"])
    corpus = load_corpus(cfg.data, splits=("train", "valid"))
    torch.manual_seed(0)
    task = SpeechTask(cfg, corpus, build_model(cfg.model))
    before = [p.detach().clone() for p in task.model.parameters()]
    fit = Trainer(task, cfg.train, tmp_path).fit()
    assert fit["steps"] == 4 and fit["tokens"] > 0 and math.isfinite(fit["final_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, task.model.parameters()))
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in lines if r["split"] == "train"] == [1, 2, 3, 4]
    assert [r["step"] for r in lines if r["split"] == "valid"] == [2, 4]
    assert all(0 < r["loss"] < 7 and abs(r["bits"] - r["loss"] / math.log(2)) < 1e-9 for r in lines)
    assert (tmp_path / "checkpoints" / "latest.pt").is_file()


def test_cli_train_eval_sample_writes_run_dir_and_wav(tmp_path):
    run = tmp_path / "run"
    sets = [a for s in TINY_WN + TINY_TRAIN + TINY_SYNTH + ["train.steps=3"] for a in ("--set", s)]
    assert speech_main(["train", "--preset", "cpu-synth", "--run-dir", str(run), *sets]) == 0
    res = json.loads((run / "results.json").read_text())
    assert res["domain"] == "speech" and res["model"] == "wavenet" and res["metric"] == "nll_nats"
    assert res["split"] == "test" and res["receptive_field"] == 15
    assert abs(res["bits_per_sample"] - res["value"] / math.log(2)) < 1e-9
    assert (run / "config.toml").is_file() and (run / "metrics.jsonl").is_file()
    # the score training reports is the one a separate evaluation of the saved run gives (same split and span)
    assert speech_main(["eval", "--run", str(run), "--split", "test", "--max-seconds", "0.5"]) == 0
    assert json.loads((run / "results.json").read_text())["value"] == pytest.approx(res["value"], rel=1e-6)
    assert speech_main(["eval", "--run", str(run), "--split", "valid", "--max-seconds", "0.3"]) == 0
    assert json.loads((run / "results.json").read_text())["split"] == "valid"
    out = tmp_path / "s.wav"
    assert speech_main(["sample", "--run", str(run), "--seconds", "0.01", "--out", str(out)]) == 0
    x, rate = sf.read(out)
    assert rate == 8000 and x.shape == (80,)
    assert speech_main(["collect", str(run), "--out", str(tmp_path / "results")]) == 0
    res_dir = tmp_path / "results"
    assert json.loads((res_dir / "cpu-synth" / "results.json").read_text())["split"] == "valid"
    rows = (res_dir / "curves.csv").read_text().splitlines()
    assert rows[0] == "preset,model,dataset,split,step,samples,nats,bits" and len(rows) == 1 + 3 + 1  # 3 train + 1 valid
    assert (res_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # a second train into the same directory refuses instead of overwriting
    assert speech_main(["train", "--preset", "cpu-synth", "--run-dir", str(run), *sets]) == 2


def test_transformer_sample_uses_memories(tmp_path):
    run = tmp_path / "ct"
    sets = [a for s in TINY_CT + TINY_TRAIN + TINY_SYNTH + ["train.steps=1"] for a in ("--set", s)]
    assert speech_main(["train", "--preset", "cpu-synth", "--run-dir", str(run), *sets]) == 0
    out = tmp_path / "ct.wav"
    # 150 samples > 2 windows of 64: full windows are committed to the memories and generation continues
    assert speech_main(["sample", "--run", str(run), "--seconds", str(150 / 8000), "--out", str(out),
                        "--prime-seconds", "0.01"]) == 0
    x, _ = sf.read(out)
    assert x.shape == (80 + 150,) and np.abs(x).max() <= 1

    # Greedy generation equals the argmax of the same model reading prime + generated samples window by window
    # with its memories (float64, so no ties flip): fails if the sampler drops, or never commits, its memories.
    from speech.run import generate

    cfg = load_speech_config("cpu-synth", TINY_CT)
    torch.manual_seed(0)
    model = build_model(cfg.model).double().eval()
    window, n = cfg.model.window, 150
    prime = torch.randint(0, 256, (2, 80))
    with torch.no_grad():
        gen = generate(model, n, prime, seed=0, temperature=0.0, window=window)
        seq = torch.cat([prime, gen], 1)

        def logits_by_window(with_memory: bool) -> torch.Tensor:
            state, out = model.init_state(2), []
            for start in range(0, seq.shape[1], window):
                logits, nxt, _ = model(seq[:, start:start + window], state if with_memory else model.init_state(2))
                out.append(logits)
                state = nxt
            return torch.cat(out, 1)

        ref, forgetful = logits_by_window(True), logits_by_window(False)
    assert torch.equal(gen, ref[:, 79:79 + n].argmax(-1))
    # the memories matter here: without them the logits after the first window are different
    assert not torch.allclose(ref[:, window:], forgetful[:, window:], atol=1e-3)


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert speech_main(["train", "--preset", "cpu-synth", "--set", "model.kind=lstm"]) == 2
    assert "model.kind" in capsys.readouterr().err
    assert speech_main(["train", "--preset", "nope"]) == 2
    assert "unknown speech preset" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert speech_main(["train", "--preset", "cpu-synth", "--run-dir", str(tmp_path / "r"), "--set",
                        'data.dataset="folder"', "--data-dir", str(empty)]) == 2
    assert f"{empty}: folder contains no audio files" in capsys.readouterr().err
    assert speech_main(["eval", "--run", str(tmp_path)]) == 2
    assert "not a speech run directory" in capsys.readouterr().err


def test_cli_skip_bad_reports_and_trains(tmp_path, capsys):
    folder = tmp_path / "wavs"
    folder.mkdir()
    t = np.arange(1600) / 8000
    for i in range(12):
        sf.write(folder / f"clip{i:02d}.wav", (0.3 * np.sin(2 * np.pi * (150 + 30 * i) * t)).astype(np.float32), 8000)
    (folder / "clip99.wav").write_text("garbage")
    run = tmp_path / "run"
    sets = [a for s in TINY_WN + TINY_TRAIN + ["train.steps=2", 'data.dataset="folder"', "data.seed=3"]
            for a in ("--set", s)]
    argv = ["train", "--preset", "cpu-synth", "--run-dir", str(run), "--data-dir", str(folder), *sets]
    assert speech_main(argv) == 2
    assert "clip99.wav: not a readable audio file" in capsys.readouterr().err
    assert speech_main(argv + ["--skip-bad"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 bad file" in err and "clip99.wav" in err
    assert json.loads((run / "bad_files.json").read_text())[0]["path"].endswith("clip99.wav")
    assert json.loads((run / "results.json").read_text())["bad_files"] == 1


@pytest.mark.slow
def test_short_cpu_training_lowers_heldout_nll_on_fsdd(tmp_path, fsdd_dir):
    cfg = load_speech_config("cpu-fsdd", TINY_CT + TINY_TRAIN + [
        f'data.path="{fsdd_dir}"', "data.max_files=40", "train.steps=25", "train.batch_size=8",
        "model.window=128"])
    corpus = load_corpus(cfg.data, splits=("train", "valid"))
    torch.manual_seed(0)
    model = build_model(cfg.model)
    clips = heldout_clips(corpus.splits["valid"], 8000, 1.0)
    before = evaluate(model, clips, 128, 4, False, "cpu")
    Trainer(SpeechTask(cfg, corpus, model), cfg.train, tmp_path).fit()
    after = evaluate(model, clips, 128, 4, False, "cpu")
    assert before["count"] == after["count"] > 7000
    assert abs(before["loss"] - math.log(256)) < 0.5      # an untrained model is near uniform
    assert after["loss"] < before["loss"] - 0.4            # ... and training moves it well below


@pytest.mark.parametrize("model", [TINY_CT, TINY_WN, TINY_WN + ["model.wavenet.context=\"carry\""]],
                         ids=["compressive", "wavenet", "wavenet-carry"])
def test_interrupted_run_resumes_exactly(tmp_path, model):
    """Stopping after 2 steps and resuming gives the same weights as 4 uninterrupted steps (stream position,
    Memory / WaveNet context and optimiser all come back from the checkpoint)."""
    sets = model + TINY_TRAIN + TINY_SYNTH + ["train.steps=4"]
    cfg = load_speech_config("cpu-synth", sets)
    corpus = load_corpus(cfg.data, splits=("train", "valid"))

    def weights(run, steps, resume=False):
        c = load_speech_config("cpu-synth", sets + [f"train.steps={steps}", "train.checkpoint_every=2"])
        torch.manual_seed(0)
        task = SpeechTask(c, corpus, build_model(c.model))
        Trainer(task, c.train, run).fit(resume=resume)
        return [p.detach().clone() for p in task.model.parameters()]

    straight = weights(tmp_path / "a", 4)
    weights(tmp_path / "b", 2)
    resumed = weights(tmp_path / "b", 4, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))


def test_refused_resume_leaves_the_run_directory_as_it_was(tmp_path):
    """A --resume refused by the checkpoint (another model width) must not rewrite config.toml: a plain
    --resume and eval still work afterwards."""
    run = tmp_path / "run"
    sets = [a for s in TINY_CT + TINY_TRAIN + TINY_SYNTH + ["train.steps=2"] for a in ("--set", s)]
    assert speech_main(["train", "--preset", "cpu-synth", "--run-dir", str(run), *sets]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    changed = [*sets, "--set", "model.transformer.d_model=48"]
    assert speech_main(["train", "--preset", "cpu-synth", "--run-dir", str(run), "--resume", *changed]) == 2
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert speech_main(["eval", "--run", str(run), "--split", "valid", "--max-seconds", "0.3"]) == 0


def test_resume_with_the_other_wavenet_context_is_refused_by_name(tmp_path, capsys):
    """A checkpoint's WaveNet state (re-read samples or carried tails) fits only its own context setting: the
    other is refused with one message naming the setting, and the run directory is left as it was."""
    run = tmp_path / "run"
    sets = [a for s in TINY_WN + TINY_TRAIN + TINY_SYNTH + ["train.steps=2", "train.checkpoint_every=1"]
            for a in ("--set", s)]
    assert speech_main(["train", "--preset", "cpu-synth", "--run-dir", str(run), *sets]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    carry = [*sets, "--set", "train.steps=3", "--set", "model.wavenet.context=\"carry\""]
    assert speech_main(["train", "--preset", "cpu-synth", "--run-dir", str(run), "--resume", *carry]) == 2
    assert "model.wavenet.context = 'reread'" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_device_error_names_the_flag(tmp_path, capsys):
    run = tmp_path / "run"
    sets = [a for s in TINY_WN + TINY_TRAIN + TINY_SYNTH + ["train.steps=1"] for a in ("--set", s)]
    assert speech_main(["train", "--preset", "cpu-synth", "--run-dir", str(run), *sets]) == 0
    capsys.readouterr()
    for command in (["eval"], ["sample", "--seconds", "0.01", "--out", str(tmp_path / "s.wav")]):
        assert speech_main([*command, "--run", str(run), "--device", "cuda"]) == 2
        assert "--device 'cuda': CUDA is not available" in capsys.readouterr().err


def test_the_training_seed_sets_the_data_order_and_resume_checks_it():
    """train.seed draws other training windows from the same splits (data.seed picks the splits); seed 0
    keeps the old order; a saved stream refuses another seed."""
    first = {}
    for seed in (0, 1):
        cfg = load_speech_config("cpu-synth", TINY_CT + TINY_TRAIN + TINY_SYNTH + [f"train.seed={seed}"])
        corpus = load_corpus(cfg.data, splits=("train",))
        stream = SpeechTask(cfg, corpus, build_model(cfg.model)).train_stream(cfg.train.batch_size, 0, 1)
        first[seed] = (next(stream), stream.state_dict())
    assert first[0][1]["seed"] == cfg.data.seed * 1009                     # seed 0: the order it always had
    assert not torch.equal(first[0][0].inputs, first[1][0].inputs)
    with pytest.raises(ValueError, match="another seed"):
        stream.load_state_dict(first[0][1])
