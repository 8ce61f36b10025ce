"""Subcommands of the `le3d` CLI, one module each (see le3d/cli.py for the contract)."""
