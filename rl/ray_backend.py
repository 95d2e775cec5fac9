"""Ray backend: the same actor code (impala.ActorCore) as Ray actors, so actors can spread over machines.

Install with `pip install 'ctbench[ray]'`. With impala.ray_address = "" a local Ray instance is
started, and shut down however the learner leaves (end, signal, error; not kill -9: docs/rl.md,
"Faults", says what stays then); otherwise the run joins the cluster at that address
("auto" for the one `ray start` made on this machine). Weights go to the actors through the object
store after every update; each actor returns its unroll (and the agent state at its start) by value.
"""
from __future__ import annotations

import torch

from rl.impala import ActorCore, actor_seed, buffer_specs, make_agent, new_unroll


class UnrollWorker:
    """Runs inside a Ray actor: one environment, one agent copy, unrolls on request."""

    def __init__(self, cfg, actor_index: int, incarnation: int, weights: dict):
        torch.set_num_threads(1)
        self.cfg, self.index, self.incarnation, self.n = cfg, actor_index, incarnation, 0
        seed = actor_seed(cfg, actor_index, incarnation)
        torch.manual_seed(seed)
        self.model = make_agent(cfg)[0]
        self.model.load_state_dict(weights)
        self.model.eval()
        self.core = ActorCore(cfg, self.model, seed)
        self.specs = buffer_specs(cfg, self.model)

    def unroll(self, weights: dict | None):
        if weights is not None:
            self.model.load_state_dict(weights)
        run = self.cfg.run
        if run.crash_actor == self.index and self.incarnation == 0 and self.n == run.crash_at_unroll:
            raise RuntimeError(f"actor {self.index}: injected crash (run.crash_actor)")
        buf = new_unroll(self.specs)
        state = {k: torch.zeros_like(v[0]) for k, v in self.model.initial_state(1).items()}
        frames = self.core.unroll(buf, state)
        self.n += 1
        return buf, state, frames


class RayActors:
    """The learner's side: same interface as impala.LocalActors."""

    def __init__(self, cfg, model, log):
        try:
            import ray
        except ImportError as e:
            raise ValueError("impala.backend = 'ray' needs Ray: pip install 'ctbench[ray]'") from e
        self.ray, self.cfg, self.log = ray, cfg, log
        self.actors = [None] * cfg.impala.num_actors
        self.incarnations = [0] * cfg.impala.num_actors
        self.pending: dict = {}
        self.restarts, self.frames = 0, 0
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            address = cfg.impala.ray_address or None
            ray.init(address=address, include_dashboard=False, log_to_driver=True, configure_logging=False,
                     **({} if address else {"num_cpus": max(2, cfg.impala.num_actors)}))
        try:
            self.remote_cls = ray.remote(num_cpus=1)(UnrollWorker)
            self.weights = ray.put({k: v.detach().clone() for k, v in model.state_dict().items()})
            for i in range(cfg.impala.num_actors):
                self._start(i)
        except BaseException:
            self.close()  # the caller gets no object to close: do not leave the Ray instance running
            raise

    def _start(self, i: int) -> None:
        self.actors[i] = self.remote_cls.remote(self.cfg, i, self.incarnations[i], self.weights)
        self.pending[self.actors[i].unroll.remote(None)] = i

    def get_batch(self, stop):
        ray = self.ray
        items = []
        while len(items) < self.cfg.impala.batch_size:
            if stop:
                return None
            ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=0.5)
            for ref in ready:
                i = self.pending.pop(ref)
                try:
                    buf, state, frames = ray.get(ref)
                except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as e:
                    self.log(f"actor {i} failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); restarting it")
                    ray.kill(self.actors[i])
                    self.incarnations[i] += 1
                    self.restarts += 1
                    self._start(i)
                    continue
                self.frames += frames
                items.append((buf, state))
                self.pending[self.actors[i].unroll.remote(self.weights)] = i
        batch = {k: torch.stack([b[k] for b, _ in items], 1) for k in items[0][0]}
        state = {k: torch.stack([s[k] for _, s in items], 0) for k in items[0][1]}
        return batch, state

    def push_weights(self, model) -> None:
        self.weights = self.ray.put({k: v.detach().clone() for k, v in model.state_dict().items()})

    def frames_generated(self) -> int:
        return self.frames

    def close(self) -> None:
        """Kill the actors; shut down the Ray instance if this run started it (its raylet, GCS and agent
        processes ignore SIGTERM, so nothing else would stop them)."""
        try:
            for a in self.actors:
                if a is not None:
                    self.ray.kill(a)
        finally:
            if self.started_ray:
                self.ray.shutdown()
