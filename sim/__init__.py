"""The only package that talks to SUMO (libsumo, traci, sumolib, netconvert).

Kept empty on purpose: importing ``sim.errors`` or ``sim.scenario`` must not start SUMO or
import numpy-heavy modules, so that ``wulin --help`` stays fast and ``controllers.plan`` and
``deploy`` can share the project error type without pulling in the simulator.
"""
