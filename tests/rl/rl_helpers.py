"""Shared helpers for the rl tests: small configs for both cores."""
from rl.config import load

CORES = ["lstm", "compressive"]


def small_config(core: str, *overrides: str):
    """The smoke preset (2 actors, a few updates) with the given core."""
    return load("smoke", [f"agent.core={core}", *overrides])
