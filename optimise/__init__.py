"""The plan optimiser: time-of-day timing plans searched against a macroscopic screen, verified in SUMO.

* :mod:`~optimise.periods`: ``AM=07:00-09:00`` periods checked against the scenario's window.
* :mod:`~optimise.model`: the network as arrays for the screen (movements, routes, storage).
* :mod:`~optimise.kernels`: the Numba store-and-forward screen and its plain-Python reference.
* :mod:`~optimise.space`: decision vector <-> :class:`~controllers.plan.TimingPlan` per signal.
* :mod:`~optimise.warmstart`: Webster plans and max-pressure's green shares as starting points.
* :mod:`~optimise.search`: CMA-ES over the screen, checkpointed every generation.
* :mod:`~optimise.verify`: SUMO micro runs of candidate plans through the experiment runner.
* :mod:`~optimise.output`: plans, schedules, change table and convergence plot on disk.
* :mod:`~optimise.time_space`: the main corridors' time-space diagrams and through bandwidths,
  current plans against optimised ones.
* :mod:`~optimise.run`: the whole ``wulin plan optimise`` job, period by period.

A top-level package in the experiments' layer (DESIGN.md has no place for an optimiser): it
uses ``sim``, ``controllers`` and ``experiments`` (the runner verifies candidates) and nothing
above them.
"""
