"""Parameter search for the baseline controllers: ``wulin tune SCENARIO --controller NAME``.

Each baseline has a search space (:data:`SPACES`): its decision interval, minimum and maximum
green and the thresholds of its own rule (max-pressure's ``max_red`` and queue-count
variant, SOTL's ``theta`` / ``phi_min`` / ``mu``, SUMO actuated's ``max_gap`` /
``detector_gap``, delay-based's detector range, webster-online's smoothing window and cycle
bounds).  A trial runs the controller with one parameter set on every tuning seed through
the one episode loop (:func:`experiments.episode.run_episode`); its value is the headline
KPI, the **mean time loss of all vehicles due** (``sim.kpi_registry``'s ``mean_time_loss``),
averaged over the seeds.  The controller's shipped defaults are measured first on the same
seeds, so the result is never worse than the defaults on the tuning seeds.  Figures meant
for reporting come from other (held-out) seeds: ``wulin compare`` uses the tuned file.

Why Optuna's TPE: the spaces mix integers, continuous values and a categorical choice
(max-pressure's ``pressure``), every trial costs whole SUMO episodes (a budget of tens of
trials, not thousands), and the objective is noisy; TPE handles mixed spaces natively and
is sample-efficient at small budgets, while CMA-ES (``cmaes``) needs continuous spaces and
more evaluations per generation than such a budget gives.  Optuna is maintained, and its
ask/tell interface lets this module keep its own study file.

Resumable: the study file (``<study>/study.json``) is rewritten atomically after every
finished trial; the same command run again reads it back into an in-memory Optuna study and
goes on to the requested number of trials.  The sampler is re-seeded before each trial with
``seed + trial number``, so an interrupted and resumed search asks exactly the trials an
uninterrupted one would (episodes are deterministic per SUMO seed).  A study file made with
other arguments (scenario, controller, seeds, space) is refused, never mixed.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from sim.config import ConfigModel, Int, Name, Number, Text, validate
from sim.errors import WulinError

ParamKind = Literal["int", "float", "choice"]


@dataclass(frozen=True)
class Param:
    """One tunable parameter: integers or floats in ``[low, high]`` (``step``), or choices."""

    kind: ParamKind
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    choices: tuple[str, ...] = ()

    def bounds(self) -> list[Any]:
        """The range as written in files: ``[low, high]`` or the list of choices."""
        if self.kind == "choice":
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.kind == "int" else [self.low, self.high]


def _i(low: int, high: int) -> Param:
    return Param("int", low, high, 1)


def _f(low: float, high: float, step: float) -> Param:
    return Param("float", float(low), float(high), step)


# The search space of each tunable controller (parameter names are its keyword arguments).
SPACES: dict[str, dict[str, Param]] = {
    "max-pressure": {"decision_interval": _i(2, 10), "min_green": _f(5, 20, 0.5),
                     "max_green": _f(30, 90, 5), "max_red": _f(60, 300, 10),
                     "pressure": Param("choice", choices=("count", "queue"))},
    "sotl": {"theta": _f(10, 200, 5), "phi_min": _f(5, 20, 0.5), "mu": _f(0, 10, 1),
             "decision_interval": _i(1, 5), "max_green": _f(30, 90, 5)},
    "actuated": {"max_gap": _f(1, 6, 0.25), "detector_gap": _f(0.5, 4, 0.25),
                 "min_green": _f(3, 15, 0.5), "max_green": _f(20, 90, 5)},
    "delay-based": {"detectorRange": _f(30, 150, 10), "minTimeLoss": _f(0.5, 5, 0.5),
                    "min_green": _f(3, 15, 0.5), "max_green": _f(20, 90, 5)},
    "webster-online": {"smoothing": _f(0.1, 1.0, 0.05), "min_green": _f(5, 15, 0.5),
                       "min_cycle": _f(30, 60, 5), "max_cycle": _f(80, 180, 10)},
}


def space_for(controller: str, ranges: Mapping[str, str] | None = None) -> dict[str, Param]:
    """``controller``'s search space, with ranges given as ``{"name": "low:high"}`` (or
    ``"a,b"`` for a choice) replacing the defaults.

    Raises:
        WulinError: an untunable controller, an unknown parameter, a range that is not two
            finite numbers with low < high, or choices outside the parameter's own.
    """
    if controller not in SPACES:
        raise WulinError(f"--controller {controller!r}: no search space; tunable: "
                         f"{', '.join(sorted(SPACES))}")
    space = dict(SPACES[controller])
    for name, text in (ranges or {}).items():
        if name not in space:
            raise WulinError(f"--range {name}: {controller} has no tunable parameter {name!r}; "
                             f"its parameters: {', '.join(space)}")
        space[name] = _parse_range(name, text, space[name])
    return space


def _parse_range(name: str, text: str, default: Param) -> Param:
    if default.kind == "choice":
        picked = tuple(c.strip() for c in text.split(",") if c.strip())
        bad = [c for c in picked if c not in default.choices]
        if not picked or bad:
            raise WulinError(f"--range {name}={text}: choose from {', '.join(default.choices)} "
                             "(comma-separated)")
        return Param("choice", choices=picked)
    lo_text, sep, hi_text = text.partition(":")
    try:
        low, high = float(lo_text), float(hi_text)
    except ValueError:
        low = high = math.nan
    if not sep or not (math.isfinite(low) and math.isfinite(high)):
        raise WulinError(f"--range {name}={text}: expected LOW:HIGH, two finite numbers "
                         f"(e.g. {name}={default.low:g}:{default.high:g})")
    if not low < high:
        raise WulinError(f"--range {name}={text}: the range is empty or inverted; "
                         f"LOW must be below HIGH")
    if default.kind == "int":
        if low != int(low) or high != int(high):
            raise WulinError(f"--range {name}={text}: {name} is an integer; give whole numbers")
        return _i(int(low), int(high))
    step = default.step if default.step and _divides(high - low, default.step) else None
    return Param("float", float(low), float(high), step)


def _divides(span: float, step: float) -> bool:
    return abs(span / step - round(span / step)) < 1e-9


def _distributions(space: Mapping[str, Param]) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.kind == "choice":
            out[name] = CategoricalDistribution(p.choices)
        elif p.kind == "int":
            out[name] = IntDistribution(int(p.low), int(p.high))
        else:
            out[name] = FloatDistribution(p.low, p.high, step=p.step)
    return out


# ------------------------------------------------------------------ the study file
class TrialRecord(ConfigModel):
    """One finished trial (or the defaults' measurement, ``number = -1``)."""

    number: Int
    params: dict[Name, Number | Int | Text]
    value: Number | None = None
    per_seed: tuple[Number, ...] = ()
    teleports: tuple[Number, ...] = ()
    error: Text = ""
    wall_s: Number = 0.0


class StudyFile(ConfigModel):
    """``study.json``: what is searched and every trial so far."""

    format: Literal["wulin.tune-study/1"] = "wulin.tune-study/1"
    scenario: Name
    controller: Name
    seeds: tuple[Int, ...]
    space: dict[Name, list[Number | Int | Text]]
    sampler_seed: Int
    defaults: TrialRecord | None = None
    trials: tuple[TrialRecord, ...] = Field(default=())

    def best(self, budget: int | None = None) -> TrialRecord | None:
        """The best complete trial among the defaults and the first ``budget`` trials (all
        when None): the lowest value."""
        done = [t for t in (self.defaults, *self.trials[:budget])
                if t is not None and t.value is not None]
        return min(done, key=lambda t: (t.value, t.number)) if done else None


def _load_study(path: Path) -> StudyFile | None:
    from sim.files import load_json

    if not path.is_file():
        return None
    return validate(StudyFile, load_json(path, "tuning study"), path)


def _save_study(path: Path, study: StudyFile) -> None:
    from experiments.durable import write_text_atomic

    write_text_atomic(path, study.model_dump_json(indent=1) + "\n")


def _open_study(path: Path, fresh: StudyFile) -> StudyFile:
    """The study at ``path`` when it was made with the same arguments, else ``fresh``."""
    old = _load_study(path)
    if old is None:
        return fresh
    keys = ("scenario", "controller", "seeds", "space", "sampler_seed")
    changed = [k for k in keys if getattr(old, k) != getattr(fresh, k)]
    if changed:
        raise WulinError(f"{path}: holds a study made with other {', '.join(changed)} "
                         f"({', '.join(f'{k}={getattr(old, k)!r}' for k in changed)}); "
                         "run the same command as before to resume, or use another --study folder")
    return old


# ------------------------------------------------------------------ trials
@dataclass(frozen=True)
class Measured:
    """A parameter set measured on every tuning seed."""

    value: float
    per_seed: tuple[float, ...]
    teleports: tuple[float, ...]


def run_trial(scenario: Any, controller: str, params: dict[str, Any],
              seeds: Sequence[int]) -> Measured:
    """Run ``controller`` with ``params`` on every seed: mean time loss of all vehicles."""
    from experiments.episode import run_episode
    from sim.kpi import summarise

    values, teleports = [], []
    for seed in seeds:
        res = run_episode(scenario, controller, seed=seed, controller_params=params)
        values.append(float(summarise(res.trips)["mean_time_loss"]))
        teleports.append(float(res.network.get("teleports", math.nan)))
    return Measured(sum(values) / len(values), tuple(values), tuple(teleports))


def _record(number: int, params: dict[str, Any], measure: Callable[[], Measured]) -> TrialRecord:
    t0 = time.perf_counter()
    try:
        m = measure()
    except WulinError as exc:  # parameters the controller refuses: a failed trial, not the end
        return TrialRecord(number=number, params=params, error=str(exc)[:2000],
                           wall_s=time.perf_counter() - t0)
    if not math.isfinite(m.value):
        return TrialRecord(number=number, params=params, error="no vehicle measured (NaN)",
                           wall_s=time.perf_counter() - t0)
    return TrialRecord(number=number, params=params, value=m.value, per_seed=m.per_seed,
                       teleports=m.teleports, wall_s=time.perf_counter() - t0)


def _optuna_study(study: StudyFile, dists: dict[str, Any]) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ost = optuna.create_study(direction="minimize")
    for t in study.trials:
        state = optuna.trial.TrialState.COMPLETE if t.value is not None \
            else optuna.trial.TrialState.FAIL
        ost.add_trial(optuna.trial.create_trial(params=dict(t.params), distributions=dists,
                                                value=t.value, state=state))
    return ost


def _sampler(seed: int, n_trials: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(5, n_trials // 3)))


@dataclass(frozen=True)
class TuneResult:
    """The study after the search: every trial, the best parameter set among the defaults and
    the first ``budget`` trials."""

    study: StudyFile
    best: TrialRecord
    path: Path
    budget: int


def tune(scenario: str, controller: str, *, trials: int, seeds: Sequence[int], study_dir: Path,
         ranges: Mapping[str, str] | None = None, sampler_seed: int = 0,
         evaluate: Callable[[dict[str, Any]], Measured] | None = None,
         on_trial: Callable[[StudyFile], None] | None = None) -> TuneResult:
    """Search ``controller``'s parameters on ``scenario`` until ``trials`` trials are done.

    Args:
        scenario: Scenario id or TOML path.
        controller: A controller with a search space (:data:`SPACES`).
        trials: Trials in all (those already in the study file count); a study that holds
            more is judged on its first ``trials`` (the same budget for every controller).
        seeds: Tuning seeds (keep the reporting seeds out of them).
        study_dir: Folder of ``study.json`` (created; resumed when it holds the same study).
        ranges: ``{"param": "low:high"}`` replacing default ranges (:func:`space_for`).
        sampler_seed: TPE's seed (re-seeded per trial with ``seed + trial number``).
        evaluate: ``params -> Measured`` (default: :func:`run_trial` on the scenario).
        on_trial: Called with the study after the defaults and after each trial.

    Raises:
        WulinError: bad arguments, a study folder holding another study, a SUMO failure.
    """
    from sim.files import check_writable_dir
    from sim.scenario import load_scenario

    if trials < 1:
        raise WulinError(f"--trials: need at least 1, got {trials}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise WulinError(f"--seeds: need distinct seeds, got {list(seeds)}")
    space = space_for(controller, ranges)
    sc = load_scenario(scenario)
    check_writable_dir(study_dir, "--study")
    measure = evaluate or (lambda p: run_trial(sc, controller, p, seeds))
    path = Path(study_dir) / "study.json"
    study = _open_study(path, StudyFile(
        scenario=sc.id, controller=controller, seeds=tuple(seeds), sampler_seed=sampler_seed,
        space={k: p.bounds() for k, p in space.items()}))
    if study.defaults is None:
        study = study.model_copy(update={"defaults": _record(-1, {}, lambda: measure({}))})
        _save_study(path, study)
    if on_trial:
        on_trial(study)
    dists = _distributions(space)
    ost = _optuna_study(study, dists)
    while len(study.trials) < trials:
        number = len(study.trials)
        ost.sampler = _sampler(sampler_seed + number, trials)
        trial = ost.ask(dists)
        params = dict(trial.params)
        rec = _record(number, params, functools.partial(measure, dict(params)))
        if rec.value is None:
            import optuna

            ost.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            ost.tell(trial, rec.value)
        study = study.model_copy(update={"trials": (*study.trials, rec)})
        _save_study(path, study)
        if on_trial:
            on_trial(study)
    best = study.best(trials)  # a study that ran further is judged on its first `trials`
    if best is None:
        raise WulinError(f"{path}: no trial finished (the defaults failed too: "
                         f"{study.defaults.error if study.defaults else '?'})")
    return TuneResult(study=study, best=best, path=path, budget=min(trials, len(study.trials)))


def tuned_entry(result: TuneResult, command: str) -> Any:
    """The :class:`~experiments.tuned.TunedController` entry for the search's best trial."""
    import datetime

    import optuna

    from experiments.tuned import TunedController
    from sim.provenance import git

    st = result.study
    if st.defaults is None or st.defaults.value is None:
        raise WulinError(f"{result.path}: the defaults were not measured "
                         f"({st.defaults.error if st.defaults else 'missing'}); nothing to compare with")
    return TunedController(
        params=dict(result.best.params), tuned_value=round(float(result.best.value or 0.0), 3),
        default_value=round(st.defaults.value, 3), seeds=st.seeds, trials=result.budget,
        space={k: tuple(v) for k, v in st.space.items()},
        sampler=f"optuna {optuna.__version__} TPESampler(seed={st.sampler_seed} + trial number)",
        date=datetime.date.today().isoformat(), git_commit=git("rev-parse", "HEAD") or "",
        command=command,
    )
