"""The ``wulin`` command: wires the subcommands of the packages and holds no logic."""
