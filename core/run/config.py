"""Presets: TOML files -> frozen dataclasses, `--set a.b=value` overrides, and a TOML writer.

A domain declares its configuration as nested frozen dataclasses (one per TOML section, e.g.
`[model] [data] [train] [eval]`). `load_config(Cls, "text", "cpu-longrange", ["train.lr=1e-3"])` finds
`configs/text/cpu-longrange.toml` (or takes a path), applies the overrides, coerces every value to the
field's declared type and raises `ConfigError` naming the bad field (`train.lr: expected a float, got 'x'`).
`dumps_toml(to_dict(cfg))` writes the resolved config that goes into RUN_DIR/config.toml.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"


class ConfigError(ValueError):
    """A preset or override is invalid; the message names the field (or file) and what to do."""


# ---------------------------------------------------------------------------------------- reading TOML
def loads_toml(text: str, source: str = "<string>") -> dict:
    if tomllib is None:
        raise ConfigError("reading TOML on Python 3.10 needs the `tomli` package: pip install tomli")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: invalid TOML: {e}") from None


def load_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    return loads_toml(text, str(path))


def available_presets(domain: str, configs_dir: Path | None = None) -> list[str]:
    folder = (configs_dir or CONFIGS_DIR) / domain
    return sorted(p.stem for p in folder.glob("*.toml"))


def find_preset(domain: str, name: str, configs_dir: Path | None = None) -> Path:
    """`name` is a preset name (configs/<domain>/<name>.toml) or a path to a TOML file."""
    as_path = Path(name)
    if as_path.suffix == ".toml" or "/" in name:
        if as_path.is_file():
            return as_path
        raise ConfigError(f"preset file {name} not found")
    path = (configs_dir or CONFIGS_DIR) / domain / f"{name}.toml"
    if path.is_file():
        return path
    names = available_presets(domain, configs_dir)
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown {domain} preset {name!r}.{hint} Available: {', '.join(names) or '(none)'}")


# ---------------------------------------------------------------------------------------- overrides
def parse_value(text: str) -> Any:
    """A command-line value: TOML syntax where it parses (1e-3, true, [1, 2], "s"), else the raw string."""
    try:
        return loads_toml(f"v = {text}")["v"]
    except ConfigError:
        return text


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of `data` with each `a.b=value` set (sections are created as needed)."""
    data = json.loads(json.dumps(data))  # deep copy of plain TOML data
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.lr=3e-4")
        *sections, leaf = key.split(".")
        node = data
        for i, part in enumerate(sections):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(sections[:i + 1])} is a value, not a section")
        node[leaf] = parse_value(raw.strip())
    return data


# ---------------------------------------------------------------------------------------- dataclasses
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a [{where}] section, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (tuple, list):
        if isinstance(value, str):
            value = parse_value(value)
        if not isinstance(value, (list, tuple)):
            value = [value]
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        inner = args[0] if args else Any
        return [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported field type {_type_name(tp)}")


def from_dict(cls: type, data: dict, where: str = "") -> Any:
    """Build dataclass `cls` from plain (TOML) data, recursively, naming any bad field in the error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(f"unknown field {prefix}{key}{hint}; valid fields: {', '.join(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain data (tuples become lists), ready for `dumps_toml` or JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def load_config(cls: type, domain: str, preset: str, overrides: list[str] | tuple[str, ...] = (),
                configs_dir: Path | None = None) -> Any:
    path = find_preset(domain, preset, configs_dir)
    return build_config(cls, load_toml(path), overrides, str(path))


def build_config(cls: type, data: dict, overrides: list[str] | tuple[str, ...], source: str) -> Any:
    """`cls` from `data` (the TOML of file `source`) with the `--set` overrides applied. An error names
    the file when the file alone is invalid, else the --set argument(s) that made it so."""
    combined = apply_overrides(data, overrides)
    try:
        return from_dict(cls, combined)
    except ConfigError as e:
        err = e
    try:
        from_dict(cls, data)
    except ConfigError:
        raise ConfigError(f"{source}: {err}") from None
    named = [o for o in overrides if o.partition("=")[0].strip() in str(err)] or list(overrides)
    raise ConfigError(f"{' '.join(f'--set {o}' for o in named)}: {err}") from None


def check_positive(obj: Any, *names: str, allow_zero: bool = False) -> None:
    """Validation helper for __post_init__: raise ConfigError naming the first non-positive field."""
    for name in names:
        value = getattr(obj, name)
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ConfigError(f"{name} must be {bound}, got {value}")


# ---------------------------------------------------------------------------------------- writing TOML
def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v, where)}" for k, v in value.items()
                               if v is not None) + "}"
    raise ConfigError(f"{where}: cannot write {type(value).__name__} to TOML")


def dumps_toml(data: dict) -> str:
    """Plain nested dict -> TOML text. `None` values are left out (TOML has no null)."""
    lines: list[str] = []

    def table(node: dict, path: list[str]) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, dict) and v is not None}
        subtables = {k: v for k, v in node.items() if isinstance(v, dict)}
        if path and (scalars or not subtables):
            lines.append(("\n" if lines else "") + "[" + ".".join(_toml_key(p) for p in path) + "]")
        for k, v in scalars.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v, '.'.join(path + [k]))}")
        for k, v in subtables.items():
            table(v, path + [k])

    table(data, [])
    return "\n".join(lines) + "\n"
