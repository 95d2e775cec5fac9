"""RLConfig: the frozen dataclasses behind configs/rl/*.toml ([env] [agent] [impala] [run] sections)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from core.run.config import ConfigError, check_positive, load_config
from core.run.precision import check_precision
from rl.agent import AgentConfig


@dataclass(frozen=True)
class EnvConfig:
    """name: "nonmatching", "minigrid:<id>" or "dmlab:<level>". The other fields configure `nonmatching`
    (see rl/envs/nonmatching.py) and are ignored by the other environments."""
    name: str = "nonmatching"
    delay: int = 4
    delay_mode: str = "wait"
    obs: str = "symbolic"
    n_objects: int = 4
    cue_steps: int = 2
    choice_steps: int = 8
    layout: str = "random"

    def kwargs(self) -> dict:
        if self.name != "nonmatching":
            return {}
        # every field but the name is a NonMatchingEnv argument of the same name
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}


@dataclass(frozen=True)
class ImpalaConfig:
    """IMPALA (Espeholt et al. 2018): num_actors actor processes, unrolls of unroll_length steps, learner
    batches of batch_size unrolls; V-trace with rho_bar = c_bar = 1.

    loss_reduction: how the policy-gradient, baseline and entropy terms reduce over the batch [T, B].
    "mean" (default; the cpu presets were tuned with it, and Adam hardly cares about the scale) or "sum"
    (IMPALA's and monobeast's form: the gradient is T * B times the mean's, which is what grad_clip = 40
    and rmsprop_eps = 0.01 are calibrated for; with means and T * B = 2048, a clip at 40 never engages).
    The compression loss is added as it is either way (it trains only the compressor)."""
    backend: str = "local"            # "local" (torch.multiprocessing) or "ray"
    ray_address: str = ""             # ray backend: "" starts a local Ray instance; "auto" or host:port joins one
    num_actors: int = 2
    unroll_length: int = 20
    batch_size: int = 8
    num_buffers: int = 0              # 0: max(2 * num_actors, batch_size + num_actors)
    total_frames: int = 200_000
    loss_reduction: str = "mean"      # "mean" or "sum" over [T, B] (see the docstring)
    optimizer: str = "adam"           # "adam" or "rmsprop"
    lr: float = 1e-3
    lr_anneal: bool = False           # linear decay to 0 over total_frames (IMPALA's schedule)
    rmsprop_alpha: float = 0.99
    rmsprop_eps: float = 0.01
    rmsprop_momentum: float = 0.0
    gamma: float = 0.99
    entropy_cost: float = 0.01
    baseline_cost: float = 0.5
    grad_clip: float = 40.0
    reward_clip: float = 1.0
    rho_bar: float = 1.0
    c_bar: float = 1.0

    def __post_init__(self):
        if self.backend not in ("local", "ray"):
            raise ConfigError(f"impala.backend: must be 'local' or 'ray', got {self.backend!r}")
        if self.loss_reduction not in ("mean", "sum"):
            raise ConfigError(f"impala.loss_reduction: must be 'mean' or 'sum', got {self.loss_reduction!r}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ConfigError(f"impala.optimizer: must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        try:
            check_positive(self, "num_actors", "unroll_length", "batch_size", "total_frames", "lr", "grad_clip")
            check_positive(self, "num_buffers", allow_zero=True)
        except ConfigError as e:
            raise ConfigError(f"impala.{e}") from None
        if self.num_buffers and self.num_buffers < self.batch_size:
            # the learner waits for batch_size filled buffers at once: fewer could never make an update
            raise ConfigError(f"impala.num_buffers={self.num_buffers} is less than impala.batch_size="
                              f"{self.batch_size}, so no batch could ever be filled: set num_buffers >= "
                              f"batch_size, or 0 for max(2 * num_actors, batch_size + num_actors)")

    @property
    def buffers(self) -> int:
        return self.num_buffers or max(2 * self.num_actors, self.batch_size + self.num_actors)


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    # torch intra-op threads of the learner (actors always use 1). On a shared 2-core machine, 2 threads
    # made an update 50x slower than 1 (spinning threads contend with the actors and other jobs).
    threads: int = 1
    precision: str = "auto"           # the learner's: auto | fp32 | bf16 (core/run/precision.py); actors run fp32
    log_every_s: float = 5.0
    checkpoint_every_s: float = 120.0
    max_time_s: float = 0.0           # stop (with a checkpoint) after this many seconds; 0: no limit
    return_window: int = 100          # results.json value: mean return of the last N training episodes
    # Fault injection for the crash-restart test: actor `crash_actor` raises in its `crash_at_unroll`-th
    # unroll, in its first incarnation only. -1: off.
    crash_actor: int = -1
    crash_at_unroll: int = 3

    def __post_init__(self):
        check_precision(self.precision, "run.precision")


@dataclass(frozen=True)
class RLConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    impala: ImpalaConfig = field(default_factory=ImpalaConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        a, T = self.agent, self.impala.unroll_length
        if a.core == "compressive" and a.compression_rate > 1 and T % a.compression_rate:
            raise ConfigError(f"impala.unroll_length={T} must be a multiple of agent.compression_rate="
                              f"{a.compression_rate} (the shipped memory state then has fixed shapes; rl/ct_core.py)")


def load(preset: str, overrides: list[str] | tuple[str, ...] = ()) -> RLConfig:
    """configs/rl/<preset>.toml (or a path) with `a.b=value` overrides."""
    return load_config(RLConfig, "rl", preset, overrides)
