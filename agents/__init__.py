"""Reinforcement-learning agents: stable-baselines3 training over ``sim.env`` and the
:class:`~agents.policy_controller.PolicyController` that runs a trained policy as a controller.

Importing this package imports nothing heavy; the submodules import torch and SB3.
"""
