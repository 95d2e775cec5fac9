"""`ctbench report`: every figure and table the runs allow, and an index.md that lists them.

A figure or table whose inputs are missing becomes one line in the index saying what is missing; a
malformed file becomes one line naming that file. Nothing here trains or imports training code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from analysis import claims, figures, tables
from analysis.runs import Run, RunFormatError, results_frame
from analysis.tables import MissingInput, Table, atomic_write

# (section, builder): builders return a Table/Plot or a list of them, or raise MissingInput.
BUILDERS = [
    ("tables", tables.headline),
    ("tables", claims.claims),
    ("figures", figures.figure2),
    ("figures", figures.layer_compressibility),
    ("tables", tables.table7),
    ("tables", tables.table5),
    ("tables", tables.sweeps),
    ("tables", tables.ablations),     # nothing at all without evaluation copies at other memory sizes
    ("figures", figures.figure3),
    ("figures", figures.figure4),
    ("figures", figures.figure5),
    ("tables", tables.longrange),
    ("tables", tables.remention),     # nothing at all (no index line) without analysis/remention.json
]


@dataclass
class Report:
    out: Path
    written: list[tuple[str, Path]] = field(default_factory=list)   # (title, file) for the index
    skipped: list[tuple[str, str]] = field(default_factory=list)    # (what, why)
    headline: Table | None = None
    claims: Table | None = None
    all_runs: Table | None = None
    failed: bool = False                                             # a builder raised something unexpected


def build_report(runs: list[Run], out: Path, command: str = "ctbench report") -> Report:
    out = Path(out)
    rep = Report(out)
    for section, builder in BUILDERS:
        try:
            made = builder(runs)
        except MissingInput as why:
            rep.skipped.append((builder.__name__, str(why)))
            continue
        except RunFormatError as err:
            rep.skipped.append((builder.__name__, f"bad input: {err}"))
            continue
        except Exception as err:  # a bug here must not cost the other figures; the CLI exits non-zero
            rep.skipped.append((builder.__name__, f"FAILED: {type(err).__name__}: {err}"))
            rep.failed = True
            continue
        for item in made if isinstance(made, list) else [made]:
            if isinstance(item, Table):
                paths = item.write(out / section)
                rep.written.append((item.title, paths[0]))
                if item.name == "headline":
                    rep.headline = item
                elif item.name == "claims":
                    rep.claims = item
                elif item.name == "all_runs":
                    rep.all_runs = item
            else:
                path = item.write(out / section)
                rep.written.append((item.title, path))
    atomic_write(out / "runs.csv", results_frame(runs).to_csv(index=False))
    atomic_write(out / "index.md", index_markdown(rep, runs, command))
    return rep


def index_markdown(rep: Report, runs: list[Run], command: str) -> str:
    lines = ["# ctbench results", "",
             f"Made by `{command} --out DIR` from {len(runs)} run director{'y' if len(runs) == 1 else 'ies'} "
             "(DIR: this folder). "
             "Every number below is ours unless a column says `paper`.", ""]
    for table in (rep.headline, rep.claims, rep.all_runs):
        if table is not None:
            lines += [table.markdown(), ""]
    lines += ["## Figures and tables", ""]
    for title, path in rep.written:
        rel = path.relative_to(rep.out).as_posix()
        lines.append(f"- ![{title}]({rel})" if path.suffix == ".png" else f"- [{title}]({rel})")
    if rep.skipped:
        lines += ["", "## Not made (missing inputs)", ""]
        lines += [f"- {what}: {why}" for what, why in rep.skipped]
    lines += ["", "Every run's results.json, one row each: [runs.csv](runs.csv)", ""]
    return "\n".join(lines)
