"""IMPALA actor-learner loop (Espeholt et al. 2018), in the style of torchbeast's monobeast.

    learner (this process) --- a free buffer index, over each actor's own pipe ---> actor (a process)
    actor: writes an unroll of T+1 steps into shared-memory buffers[index], plus the agent state at the
    start of the unroll --- the same index back over its pipe ---> learner: once batch_size are full,
    stacks them time-major [T+1, B, ...], V-trace, one optimiser step, copies the weights into the
    shared actor model, and hands the indices out again.

Entry 0 of an unroll is the last entry of the previous one, so the learner can bootstrap and every
transition is learned from exactly once. Entry t holds obs_t, the reward and done that led to it
(done[t]: obs_t starts a new episode), last_action = the action taken before obs_t, and the actor's
policy_logits/action at obs_{t-1} (monobeast's layout).

Faults: an actor that dies at any moment (an exception, SIGKILL) is reported and restarted; the learner
keeps the buffer bookkeeping, so the dead actor's buffers go back to the free list (monobeast's shared
free/full queues would stay locked by an actor killed inside `get`). SIGINT/SIGTERM/SIGHUP stop the
learner at the next batch, write checkpoints/latest.pt and stop every actor; actors also exit when their
parent disappears, so no process outlives the run.
"""
from __future__ import annotations

import collections
import math
import os
import signal
import threading
import time
from multiprocessing import connection as mp_connection
from pathlib import Path

import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from core.run.checkpoint import load_checkpoint, save_checkpoint, seed_everything
from core.run.config import dumps_toml, to_dict
from core.run.io import MetricsWriter, atomic_write_text, exclusive_run, write_results
from core.run.precision import autocast, resolve_precision
from rl import vtrace
from rl.agent import Agent
from rl.config import RLConfig
from rl.envs import human_normalised, make_env

Buffers = dict[str, list[torch.Tensor]]


# ------------------------------------------------------------------------------------------ the agent
def make_agent(cfg: RLConfig) -> tuple[Agent, int]:
    """The agent for cfg.env, and the env's frames per agent step (4 for DMLab's action repeat)."""
    env = make_env(cfg.env.name, seed=0, **cfg.env.kwargs())
    obs_shape = tuple(env.observation_spec().shape)
    agent = Agent(obs_shape, int(env.action_spec().num_values), cfg.agent)
    frames_per_step = getattr(env, "frames_per_step", 1)
    env.close()
    return agent, frames_per_step


# ------------------------------------------------------------------------------------------ actors
class ActorCore:
    """One environment and the agent's state for it; fills unrolls. Shared by the local and Ray backends.

    The agent's state is carried across unrolls (its memory of past steps) and reset by the core at
    episode starts (done); `unroll` also writes the state at the start of the unroll, which the learner
    needs to recompute the same policy.
    """

    def __init__(self, cfg: RLConfig, model: Agent, seed: int):
        self.cfg, self.model = cfg, model
        self.env = make_env(cfg.env.name, seed=seed, **cfg.env.kwargs())
        self.frames_per_step = getattr(self.env, "frames_per_step", 1)
        ts = self.env.reset()
        self.episode_return, self.episode_step = 0.0, 0
        self.env_out = {"obs": torch.as_tensor(ts.observation), "reward": 0.0, "done": True,
                        "episode_return": 0.0, "episode_step": 0, "last_action": 0}
        self.state = model.initial_state(1)
        with torch.no_grad():
            out, _ = self._act(self.state)
        self.agent_out = out

    def _act(self, state):
        e = self.env_out
        return self.model(e["obs"][None, None], torch.tensor([[e["last_action"]]]), torch.tensor([[e["reward"]]]),
                          torch.tensor([[e["done"]]]), state)

    def _step(self, action: int) -> None:
        ts = self.env.step(action)
        self.episode_return += ts.reward or 0.0
        self.episode_step += 1
        out = {"obs": torch.as_tensor(ts.observation), "reward": float(ts.reward or 0.0), "done": ts.last(),
               "episode_return": self.episode_return, "episode_step": self.episode_step, "last_action": action}
        if ts.last():  # dm_env truncation and termination alike end the episode (as in monobeast)
            out["obs"] = torch.as_tensor(self.env.reset().observation)
            self.episode_return, self.episode_step = 0.0, 0
        self.env_out = out

    def _write(self, buf: dict[str, torch.Tensor], t: int) -> None:
        for k, v in self.env_out.items():
            buf[k][t] = v
        for k in ("policy_logits", "baseline", "action"):
            buf[k][t] = self.agent_out[k][0, 0]

    @torch.no_grad()
    def unroll(self, buf: dict[str, torch.Tensor], state_buf: dict[str, torch.Tensor]) -> int:
        """Fill buf[key]: [T+1, ...] and state_buf[key]: [...] (the state before entry 0). Returns frames."""
        for k, v in self.state.items():
            state_buf[k].copy_(v[0])
        self._write(buf, 0)
        T = buf["done"].shape[0] - 1
        for t in range(T):
            self.agent_out, self.state = self._act(self.state)
            self._step(int(self.agent_out["action"][0, 0]))
            self._write(buf, t + 1)
        return T * self.frames_per_step


def buffer_specs(cfg: RLConfig, model: Agent) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    env = make_env(cfg.env.name, seed=0, **cfg.env.kwargs())
    spec = env.observation_spec()
    env.close()
    T1, A = cfg.impala.unroll_length + 1, model.num_actions
    return {"obs": ((T1, *spec.shape), getattr(torch, spec.dtype.name)),
            "reward": ((T1,), torch.float32), "done": ((T1,), torch.bool),
            "episode_return": ((T1,), torch.float32), "episode_step": ((T1,), torch.int32),
            "last_action": ((T1,), torch.int64), "policy_logits": ((T1, A), torch.float32),
            "baseline": ((T1,), torch.float32), "action": ((T1,), torch.int64)}


def new_unroll(specs: dict, share: bool = False) -> dict[str, torch.Tensor]:
    out = {k: torch.zeros(shape, dtype=dtype) for k, (shape, dtype) in specs.items()}
    return {k: v.share_memory_() for k, v in out.items()} if share else out


def actor_seed(cfg: RLConfig, actor_index: int, incarnation: int) -> int:
    return cfg.run.seed * 100_003 + actor_index * 1_009 + incarnation * 7_919 + 1


def actor_process(actor_index: int, incarnation: int, cfg: RLConfig, model: Agent, buffers: Buffers,
                  state_buffers: Buffers, conn, frames_done: torch.Tensor, parent_pid: int) -> None:
    """The body of one actor process: receive a buffer index from the learner over this actor's own pipe,
    fill that buffer, send the index back. None (or a closed pipe) ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the whole group; the learner decides
    torch.set_num_threads(1)
    seed = actor_seed(cfg, actor_index, incarnation)
    torch.manual_seed(seed)
    actor = ActorCore(cfg, model, seed)
    n = 0
    try:
        while (index := _next_index(conn, parent_pid)) is not None:
            if cfg.run.crash_actor == actor_index and incarnation == 0 and n == cfg.run.crash_at_unroll:
                raise RuntimeError(f"actor {actor_index}: injected crash (run.crash_actor)")
            frames = actor.unroll({k: b[index] for k, b in buffers.items()},
                                  {k: b[index] for k, b in state_buffers.items()})
            frames_done[actor_index] += frames
            conn.send(index)  # only after the buffer is complete: the learner never sees half an unroll
            n += 1
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the learner is gone


def _next_index(conn, parent_pid: int) -> int | None:
    """The next buffer index from the learner; None to stop, or when the learner is gone."""
    while not conn.poll(1.0):
        if os.getppid() != parent_pid:
            return None  # orphaned
    return conn.recv()


# ------------------------------------------------------------------------------------------ learner
def make_optimizer(cfg: RLConfig, params) -> torch.optim.Optimizer:
    c = cfg.impala
    if c.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=c.lr, alpha=c.rmsprop_alpha, eps=c.rmsprop_eps,
                                   momentum=c.rmsprop_momentum)
    return torch.optim.Adam(params, lr=c.lr)


def learn_step(cfg: RLConfig, model: Agent, optimizer, batch: dict[str, torch.Tensor],
               initial_state: dict[str, torch.Tensor]) -> dict[str, float]:
    """One IMPALA update on batch[key]: [T+1, B, ...] from the actors' initial_state[key]: [B, ...]."""
    c = cfg.impala
    optimizer.zero_grad(set_to_none=True)   # before the forward: the old gradients' memory serves it
    with autocast("cpu", cfg.run.precision, "run.precision"):
        out, _ = model(batch["obs"], batch["last_action"], batch["reward"], batch["done"], initial_state)
    # the losses (V-trace's products and sums) in float32 whatever the forward's precision
    out = {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
    bootstrap = out["baseline"][-1].detach()
    b = {k: v[1:] for k, v in batch.items()}
    logits, values = out["policy_logits"][:-1], out["baseline"][:-1]
    rewards = b["reward"].clamp(-c.reward_clip, c.reward_clip) if c.reward_clip > 0 else b["reward"]
    discounts = (~b["done"]).float() * c.gamma
    vt = vtrace.from_logits(b["policy_logits"], logits.detach(), b["action"], discounts, rewards,
                            values.detach(), bootstrap, rho_bar=c.rho_bar, c_bar=c.c_bar)
    reduce = torch.sum if c.loss_reduction == "sum" else torch.mean  # over [T, B]; why: ImpalaConfig
    target_log_p = vtrace.action_log_probs(logits, b["action"])
    pg_loss = -reduce(target_log_p * vt.pg_advantages)
    baseline_loss = c.baseline_cost * 0.5 * reduce((vt.vs - values).pow(2))
    log_p = F.log_softmax(logits, -1)
    entropy = -(log_p.exp() * log_p).sum(-1)  # [T, B]
    loss = pg_loss + baseline_loss - c.entropy_cost * reduce(entropy) + out["aux_loss"]
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
    optimizer.step()
    return {"loss": loss.item(), "pg_loss": pg_loss.item(), "baseline_loss": baseline_loss.item(),
            "entropy": entropy.mean().item(), "value_mean": values.mean().item(),
            # |log pi/mu| of the taken actions: how far the actors' policy lags the learner's
            "log_rho_abs": (target_log_p.detach() - vtrace.action_log_probs(b["policy_logits"], b["action"])).abs().mean().item(),
            "aux_loss": float(out["aux_loss"].detach()), "grad_norm": float(grad_norm)}


class Stop:
    """Turns SIGINT/SIGTERM/SIGHUP into a flag the learner checks between batches (restored on exit)."""

    def __init__(self):
        self.signum: int | None = None
        self._old = {}

    def __enter__(self):
        return self.arm()

    def arm(self) -> "Stop":
        """Install the handlers (again: `ray.init` replaces SIGTERM's with its own, which exits at once).
        __exit__ restores the ones from before the first arm()."""
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: the terminal went away
                old = signal.signal(s, self._handle)
                self._old.setdefault(s, old)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)

    def __bool__(self):
        return self.signum is not None


class LocalActors:
    """N actor processes over shared-memory buffers; restarts any that die, at any moment.

    The learner keeps the buffer bookkeeping: every index is in exactly one of `free`, `full` (filled,
    waiting for a batch) or `held[i]` (sent to actor i, not back yet), and each actor has its own pipe.
    A shared queue would not do: an actor killed inside `Queue.get` dies holding the queue's lock and
    wedges every other actor. A dead actor here breaks only its own pipe; its held indices go back to
    `free` (an actor sends an index back only when the buffer is complete, so no half-written unroll is
    learned from).
    """

    # Indices an actor holds at once: the one it fills, and the next one already waiting in its pipe, so it
    # never waits for the learner between unrolls.
    PER_ACTOR = 2

    def __init__(self, cfg: RLConfig, model: Agent, log):
        self.cfg, self.log = cfg, log
        self.ctx = mp.get_context("spawn")  # fork after torch has run threads can deadlock the child
        self.shared = make_agent(cfg)[0]
        self.shared.load_state_dict(model.state_dict())
        self.shared.share_memory()
        self.shared.eval()
        specs = buffer_specs(cfg, model)
        n, actors = cfg.impala.buffers, cfg.impala.num_actors
        self.buffers: Buffers = {k: [] for k in specs}
        for _ in range(n):
            for k, v in new_unroll(specs, share=True).items():
                self.buffers[k].append(v)
        template = model.initial_state(1)
        self.state_buffers: Buffers = {k: [v[0].clone().share_memory_() for _ in range(n)] for k, v in template.items()}
        self.free, self.full = collections.deque(range(n)), []
        self.held: list[list[int]] = [[] for _ in range(actors)]
        self.frames_done = torch.zeros(actors, dtype=torch.int64).share_memory_()
        self.procs: list = [None] * actors
        self.conns: list = [None] * actors   # the learner's end of each actor's pipe; None once broken
        self.incarnations = [0] * actors
        self.restarts = 0
        for i in range(actors):
            self._start(i)

    def _start(self, i: int) -> None:
        conn, child_conn = self.ctx.Pipe()
        p = self.ctx.Process(target=actor_process, daemon=True, name=f"ctbench-rl-actor-{i}",
                             args=(i, self.incarnations[i], self.cfg, self.shared, self.buffers, self.state_buffers,
                                   child_conn, self.frames_done, os.getpid()))
        p.start()
        child_conn.close()  # the actor now holds the only copy: its death closes the pipe (EOF here)
        self.procs[i], self.conns[i] = p, conn
        self._hand_out()

    def _hand_out(self) -> None:
        """Send free indices to live actors, fewest held first, up to PER_ACTOR each."""
        while self.free:
            wanting = [i for i, c in enumerate(self.conns) if c is not None and len(self.held[i]) < self.PER_ACTOR]
            if not wanting:
                return
            i = min(wanting, key=lambda i: len(self.held[i]))
            index = self.free.popleft()
            self.held[i].append(index)  # held before the send: if the actor is dead, check() reclaims it
            try:
                self.conns[i].send(index)
            except OSError:
                self._broken(i)

    def _receive(self, i: int) -> None:
        """Move the indices actor i has sent back into `full` (all complete messages in its pipe)."""
        conn = self.conns[i]
        try:
            while conn.poll(0):
                index = conn.recv()
                self.held[i].remove(index)
                self.full.append(index)
        except (EOFError, OSError):
            self._broken(i)

    def _broken(self, i: int) -> None:
        self.conns[i].close()
        self.conns[i] = None  # check() restarts the actor and reclaims what it held

    def wait(self, timeout: float) -> None:
        """Wait up to timeout for any actor to send an index back; collect what arrived; hand out free ones."""
        live = [c for c in self.conns if c is not None]
        for conn in mp_connection.wait(live, timeout):
            self._receive(self.conns.index(conn))
        self._hand_out()

    def check(self) -> None:
        """Restart dead actors; the buffers they held go back to `free`."""
        for i, p in enumerate(self.procs):
            if p.exitcode is None and self.conns[i] is not None:
                continue
            if self.conns[i] is not None:
                self._receive(i)  # what it sent back before dying is complete
            if self.conns[i] is not None:
                self._broken(i)
            if p.exitcode is None:  # pipe broken but the process lingers: make sure it is gone
                p.kill()
                p.join()
            self.log(f"actor {i} (pid {p.pid}) died with exit code {p.exitcode}; restarting it")
            self.free.extend(self.held[i])
            self.held[i] = []
            self.incarnations[i] += 1
            self.restarts += 1
            self._start(i)

    def buffer_census(self) -> list[int]:
        """Every buffer index wherever it is now, sorted: list(range(buffers)) when none is lost or doubled."""
        return sorted([*self.free, *self.full, *(i for held in self.held for i in held)])

    def get_batch(self, stop: Stop):
        """batch[key]: [T+1, B, ...], state[key]: [B, ...]; None when stopped."""
        B = self.cfg.impala.batch_size
        self.check()
        while len(self.full) < B:
            if stop:
                return None
            self.wait(timeout=0.5)
            self.check()
        indices, self.full = self.full[:B], self.full[B:]
        batch = {k: torch.stack([b[i] for i in indices], 1) for k, b in self.buffers.items()}
        state = {k: torch.stack([b[i] for i in indices], 0) for k, b in self.state_buffers.items()}
        self.free.extend(indices)
        self._hand_out()
        return batch, state

    def push_weights(self, model: Agent) -> None:
        with torch.no_grad():
            for dst, src in zip(self.shared.parameters(), model.parameters()):
                dst.copy_(src)

    def frames_generated(self) -> int:
        return int(self.frames_done.sum())

    def close(self) -> None:
        for conn in self.conns:
            if conn is not None:
                try:
                    conn.send(None)
                except OSError:
                    pass
        deadline = time.time() + 5.0
        for p in self.procs:
            p.join(timeout=max(0.0, deadline - time.time()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=2.0)
            if p.is_alive():
                p.kill()
                p.join()
        for conn in self.conns:
            if conn is not None:
                conn.close()


# ------------------------------------------------------------------------------------------ the run
def start_actors(cfg: RLConfig, model: Agent, log):
    """The actors of cfg.impala.backend: LocalActors, or RayActors (same interface)."""
    if cfg.impala.backend == "ray":
        from rl.ray_backend import RayActors
        return RayActors(cfg, model, log)
    return LocalActors(cfg, model, log)


def fingerprint(cfg: RLConfig) -> dict:
    return {"env": to_dict(cfg.env), "agent": to_dict(cfg.agent)}


def train(cfg: RLConfig, run_dir: str | Path, preset: str = "custom", resume: bool = False,
          log=print) -> int:
    """Train until cfg.impala.total_frames (or run.max_time_s, or a signal). Returns an exit code:
    0 when done, 128 + signal number when stopped by SIGINT/SIGTERM (checkpoint written). The learner
    holds the run directory's lock throughout (core.run.io.exclusive_run)."""
    with exclusive_run(run_dir) as path:
        return _train(cfg, path, preset, resume, log)


def _train(cfg: RLConfig, run_dir: Path, preset: str, resume: bool, log) -> int:
    seed_everything(cfg.run.seed)
    torch.set_num_threads(cfg.run.threads)
    precision = resolve_precision(cfg.run.precision, "cpu", "run.precision")
    log(f"learner precision: {precision}")
    model, frames_per_step = make_agent(cfg)
    optimizer = make_optimizer(cfg, model.parameters())
    c = cfg.impala
    frames_per_update = c.unroll_length * c.batch_size * frames_per_step
    total_updates = math.ceil(c.total_frames / frames_per_update)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda u: max(0.0, 1 - u / total_updates) if c.lr_anneal else 1.0)
    ckpt_path = run_dir / "checkpoints" / "latest.pt"
    metrics = MetricsWriter(run_dir / "metrics.jsonl")
    step, frames, elapsed0, returns = 0, 0, 0.0, collections.deque(maxlen=cfg.run.return_window)
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, fingerprint(cfg))
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, frames, elapsed0 = ckpt["step"], ckpt["frames"], ckpt["elapsed_s"]
        returns.extend(ckpt["returns"])
        metrics.truncate_after(step)
        log(f"resumed from {ckpt_path} at update {step}, {frames} frames")
    elif metrics.path.exists():
        metrics.path.unlink()
    atomic_write_text(run_dir / "config.toml", dumps_toml(to_dict(cfg)))

    def save():
        save_checkpoint(ckpt_path, {"fingerprint": fingerprint(cfg), "step": step, "frames": frames,
                                    "elapsed_s": elapsed0 + time.time() - t0, "model": model.state_dict(),
                                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                    "returns": list(returns)})

    stopped = None
    # Stop before the actors start, close() on every way out (end, signal, error): nothing they started
    # (processes, a local Ray instance) outlives the learner unless it is SIGKILLed (docs/rl.md, Faults).
    with Stop() as stop:
        actors = start_actors(cfg, model, log)
        stop.arm()
        t0 = last_log = last_ckpt = time.time()
        log_frames, log_gen, learn_time, log_returns, stats = frames, 0, 0.0, [], {}
        try:
            while frames < c.total_frames:
                if cfg.run.max_time_s and elapsed0 + time.time() - t0 > cfg.run.max_time_s:
                    log(f"run.max_time_s={cfg.run.max_time_s} reached")
                    break
                got = actors.get_batch(stop)
                if got is None:
                    stopped = stop.signum
                    break
                batch, state = got
                tl = time.time()
                stats = learn_step(cfg, model, optimizer, batch, state)
                scheduler.step()
                actors.push_weights(model)
                learn_time += time.time() - tl
                step += 1
                frames += frames_per_update
                done_returns = batch["episode_return"][1:][batch["done"][1:]].tolist()
                returns.extend(done_returns)
                log_returns.extend(done_returns)
                now = time.time()
                if now - last_log >= cfg.run.log_every_s or frames >= c.total_frames:
                    gen = actors.frames_generated()
                    record = {"split": "train", "step": step, "tokens": frames, "frames": frames,
                              "loss": stats["loss"], "bits": stats["loss"] / math.log(2),
                              "lr": scheduler.get_last_lr()[0], "tokens_per_s": (frames - log_frames) / (now - last_log),
                              "time_s": elapsed0 + now - t0,
                              "episode_return": sum(log_returns) / len(log_returns) if log_returns else None,
                              "episodes": len(log_returns),
                              "fps_actor": (gen - log_gen) / (now - last_log) if log_gen else None,
                              "fps_learner": (frames - log_frames) / learn_time if learn_time else None,
                              "actor_restarts": actors.restarts, "precision": precision.name,
                              **{k: v for k, v in stats.items() if k != "loss"}}
                    hn = human_normalised(cfg.env.name, record["episode_return"]) if log_returns else None
                    if hn is not None:
                        record["human_normalised"] = hn
                    metrics.write(record)
                    ret = f"{record['episode_return']:.3f}" if log_returns else "-"
                    log(f"update {step} frames {frames} return {ret} loss {stats['loss']:.4f} "
                        f"fps {record['tokens_per_s']:.0f}")
                    last_log, log_frames, log_gen, learn_time, log_returns = now, frames, gen, 0.0, []
                if now - last_ckpt >= cfg.run.checkpoint_every_s:
                    save()
                    last_ckpt = now
            save()
        finally:
            actors.close()
    if stopped is not None:
        log(f"stopped by signal {signal.Signals(stopped).name}; checkpoint {ckpt_path}; continue with --resume")
        return 128 + stopped
    write_final_results(cfg, run_dir, preset, model, step, frames, elapsed0 + time.time() - t0, returns,
                        precision.name)
    return 0


def write_final_results(cfg: RLConfig, run_dir: Path, preset: str, model: Agent, step: int, frames: int,
                        wall: float, returns, precision: str = "fp32") -> None:
    a = cfg.agent
    value = sum(returns) / len(returns) if returns else float("nan")
    compressive = a.core == "compressive"
    params = sum(p.numel() for p in model.parameters())
    res = {"domain": "rl", "model": a.core, "preset": preset, "dataset": cfg.env.name, "metric": "return",
           "value": value, "split": "train", "params": params, "params_non_embedding": params,
           "tokens_seen": frames, "steps": step, "wall_time_s": wall, "device": "cpu", "partial_data": False,
           "mem_len": a.mem_len if compressive else 0, "cmem_len": a.cmem_len if compressive else 0,
           "compression_rate": a.compression_rate if compressive else 0,
           "compression": a.compression if compressive else "none",
           "compression_loss": a.compression_loss if compressive else "none",
           "frames": frames, "episodes_averaged": len(returns), "delay": cfg.env.delay,
           "num_actors": cfg.impala.num_actors, "backend": cfg.impala.backend, "precision": precision}
    if cfg.env.name == "nonmatching":
        from rl.envs.nonmatching import NonMatchingEnv
        res["chance_return"] = NonMatchingEnv(**cfg.env.kwargs()).chance_return()
    hn = human_normalised(cfg.env.name, value)
    if hn is not None:
        res["human_normalised"] = hn
    write_results(run_dir, res)
