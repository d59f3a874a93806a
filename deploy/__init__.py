"""Timing plans to the field: plan store and approval, NTCIP 1202 adapter, controller emulator.

The controller side: ``snmp`` (messages, the manager), ``usm`` (SNMPv3 authPriv), ``secrets``
(device credentials outside the store), ``ntcip`` (the deploy adapter), ``drift`` (readback
against the live plans); the emulator is ``device_model`` (the controller) served by ``agent``
(SNMP), put together in ``emulator``.

Imports ``controllers.plan``, ``sim.errors`` and its protocol libraries (SQLAlchemy, pysnmp)
only; ``deploy.sumo_bridge`` (the emulator driving SUMO) is the one module that imports the
simulator, and nothing here imports it.
"""
