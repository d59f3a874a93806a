"""Timing plans to the field: plan store and approval, NTCIP 1202 adapter, controller emulator.

Imports ``controllers.plan``, ``sim.errors`` and its protocol libraries (SQLAlchemy, pysnmp)
only; ``deploy.sumo_bridge`` (the emulator driving SUMO) is the one module that imports the
simulator, and nothing here imports it.
"""
