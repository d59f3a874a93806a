"""Experiments: the one episode loop (``experiments.episode``), runners, results and reports."""
