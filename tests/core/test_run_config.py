"""Preset loading, overrides with type coercion, clear errors, the TOML writer, atomic writes."""
from dataclasses import dataclass, field

import pytest

from core.run import ConfigError, apply_overrides, dumps_toml, find_preset, from_dict, load_config, to_dict
from core.run.config import loads_toml
from core.run.io import atomic_write_json, read_json, read_jsonl, MetricsWriter, write_results


@dataclass(frozen=True)
class Model:
    d_model: int = 8
    cutoffs: tuple[int, ...] = (2, 4)
    kind: str = "transformer"
    dropout: float = 0.1
    tied: bool = True
    limit: int | None = None

    def __post_init__(self):
        if self.d_model % 2:
            raise ConfigError(f"model.d_model must be even, got {self.d_model}")


@dataclass(frozen=True)
class Run:
    preset: str = ""
    model: Model = field(default_factory=Model)


def write_preset(tmp_path, text):
    (tmp_path / "dom").mkdir(exist_ok=True)
    (tmp_path / "dom" / "p.toml").write_text(text)


def test_load_preset_with_overrides(tmp_path):
    write_preset(tmp_path, 'preset = "p"\n[model]\nd_model = 16\ndropout = 0\n')
    cfg = load_config(Run, "dom", "p", ["model.dropout=0.25", "model.cutoffs=[10, 20]", "model.tied=false",
                                         "model.kind=lstm", "model.limit=5"], configs_dir=tmp_path)
    assert cfg == Run("p", Model(16, (10, 20), "lstm", 0.25, False, 5))
    assert isinstance(cfg.model.dropout, float)
    # the resolved config round-trips through the writer
    assert from_dict(Run, loads_toml(dumps_toml(to_dict(cfg)))) == cfg
    assert find_preset("dom", str(tmp_path / "dom" / "p.toml")).name == "p.toml"


@pytest.mark.parametrize("override, message", [
    ("model.d_modle=3", r"unknown field model.d_modle \(did you mean model.d_model\?\)"),
    ("model.d_model=abc", r"model.d_model: expected an integer, got 'abc'"),
    ("model.d_model=7", r"d_model must be even"),
    ("model.tied=maybe", r"model.tied: expected true or false"),
    ("nosection.x=1", r"unknown field nosection"),
    ("model.dropout", r"expected KEY=VALUE"),
])
def test_bad_fields_are_named(tmp_path, override, message):
    write_preset(tmp_path, "[model]\n")
    with pytest.raises(ConfigError, match=message):
        load_config(Run, "dom", "p", [override], configs_dir=tmp_path)


def test_unknown_preset_lists_the_available_ones(tmp_path):
    write_preset(tmp_path, "")
    with pytest.raises(ConfigError, match=r"unknown dom preset 'q'.*Available: p"):
        find_preset("dom", "q", configs_dir=tmp_path)
    (tmp_path / "bad.toml").write_text("[model\n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(Run, "dom", str(tmp_path / "bad.toml"))


def test_toml_writer_values():
    data = {"a": 1, "s": 'q"uote\n', "t": {"f": 1e-6, "l": [1, 2], "b": True, "none": None, "u": {"x": "y"}}}
    back = loads_toml(dumps_toml(data))
    assert back == {"a": 1, "s": 'q"uote\n', "t": {"f": 1e-6, "l": [1, 2], "b": True, "u": {"x": "y"}}}
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x y"]) == {"a": {"b": 1, "c": "x y"}}


def test_atomic_json_and_metrics(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"v": float("nan"), "w": 1})
    assert read_json(tmp_path / "x.json") == {"v": None, "w": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    m = MetricsWriter(tmp_path / "metrics.jsonl")
    for s in range(1, 5):
        m.write({"split": "train", "step": s})
    m.truncate_after(2)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"split": "tr')  # a torn last line is skipped
    assert [l["step"] for l in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2]
    with pytest.raises(ValueError, match="missing required keys"):
        write_results(tmp_path, {"domain": "text"})
