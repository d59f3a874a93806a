"""CMA-ES over the decision space, screened by the macroscopic model, checkpointed every generation.

Why CMA-ES (the ``cmaes`` package): the objective is a black box (a simulation), noisy-ish,
non-separable (offsets of neighbouring signals interact) and of moderate dimension (about
five variables per signal: 137 for Wulin's 24 signals); CMA-ES is the standard method for
that class, needs no gradient, handles box bounds, and ``cmaes`` is small, maintained, pure
numpy and its optimiser object pickles, which makes resuming exact.  Optuna's TPE scales
poorly past a few dozen dimensions; nevergrad would also serve but brings far more.

Warm starts: every named starting vector (Webster, max-pressure's shares, the current plans)
is evaluated; the best is CMA's initial mean.  Each generation's state (the optimiser, best so
far, history) is written atomically (temporary file + rename) to the checkpoint, so a killed
run continues with ``resume`` from its last finished generation and nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import WulinError

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one search.

    Attributes:
        generations: CMA-ES generations.
        popsize: Candidates per generation (None: CMA's default, 4 + 3 ln(dim)).
        sigma: Initial step size in the unit box.
        seed: Seed of the optimiser's random numbers.
    """

    generations: int = 40
    popsize: int | None = None
    sigma: float = 0.15
    seed: int = 1


@dataclass
class SearchState:
    """What a checkpoint holds."""

    key: str
    optimizer: Any
    generation: int = 0
    best_x: np.ndarray | None = None
    best_f: float = float("inf")
    history: list[dict[str, float]] = field(default_factory=list)
    warm: dict[str, float] = field(default_factory=dict)
    version: int = CHECKPOINT_VERSION
    rng_state: Any = None
    warm_x: dict[str, np.ndarray] | None = None


def problem_key(**parts: Any) -> str:
    """A hash of everything that defines the search: a checkpoint of another problem is refused."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_state(path: Path, state: SearchState) -> None:
    from experiments.durable import write_bytes_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    # cmaes leaves its random generator out of the pickle (it makes a fresh unseeded one on
    # load); its state is kept beside it, so a resumed search draws what an unbroken one would
    state.rng_state = state.optimizer._rng.get_state()
    write_bytes_atomic(path, pickle.dumps(state))


def load_state(path: Path, key: str) -> SearchState:
    """The checkpoint at ``path`` (one error when unreadable or of another problem)."""
    try:
        state = pickle.loads(path.read_bytes())
    except Exception as exc:  # a damaged or foreign file
        raise WulinError(f"{path}: cannot read the checkpoint ({exc.__class__.__name__}); remove it to start "
                         "over") from None
    if not isinstance(state, SearchState) or state.version != CHECKPOINT_VERSION:
        raise WulinError(f"{path}: not a checkpoint of this version; remove it to start over")
    if state.key != key:
        raise WulinError(f"{path}: the checkpoint is of another problem (scenario, period, options or "
                         "signals differ); use another --out or the same options")
    state.optimizer._rng.set_state(state.rng_state)
    return state


def run_search(evaluate: Callable[[list[np.ndarray]], list[float]], bounds: np.ndarray,
               warm: dict[str, np.ndarray], cfg: SearchConfig, checkpoint: Path, key: str, *,
               resume: bool, on_generation: Callable[[SearchState], None] | None = None) -> SearchState:
    """Minimise ``evaluate`` (a batch of vectors -> objectives) with CMA-ES.

    Args:
        evaluate: Objective of each vector of a batch.
        bounds: ``(dim, 2)`` box.
        warm: Named starting vectors; the best becomes the initial mean.
        cfg: Generations, population, step size, seed.
        checkpoint: File written after every generation.
        key: :func:`problem_key` of this search.
        resume: Continue from ``checkpoint``; without it an existing checkpoint is refused.
        on_generation: Called after each generation (progress display).
    """
    from cmaes import CMA

    if checkpoint.exists() and not resume:
        raise WulinError(f"{checkpoint} exists: continue it with --resume, or choose another --out "
                         "(nothing was overwritten)")
    if checkpoint.exists():
        state = load_state(checkpoint, key)
        if state.warm_x is None:  # written before warm starts were kept
            state.warm_x = dict(warm)
    else:
        names = list(warm)
        values = evaluate([warm[n] for n in names])
        best = int(np.argmin(values))
        opt = CMA(mean=warm[names[best]].copy(), sigma=cfg.sigma, bounds=bounds, seed=cfg.seed,
                  population_size=cfg.popsize)
        state = SearchState(key, opt, 0, warm[names[best]].copy(), float(values[best]),
                            warm=dict(zip(names, map(float, values), strict=True)), warm_x=dict(warm))
        state.history.append({"generation": 0, "best": state.best_f, "mean": float(np.mean(values))})
        save_state(checkpoint, state)
    while state.generation < cfg.generations:
        opt = state.optimizer
        xs = [opt.ask() for _ in range(opt.population_size)]
        fs = evaluate(xs)
        opt.tell(list(zip(xs, fs, strict=True)))
        i = int(np.argmin(fs))
        if fs[i] < state.best_f:
            state.best_f, state.best_x = float(fs[i]), xs[i].copy()
        state.generation += 1
        state.history.append({"generation": state.generation, "best": state.best_f,
                              "mean": float(np.mean(fs))})
        save_state(checkpoint, state)
        if on_generation is not None:
            on_generation(state)
    return state
