"""User-facing errors: one clear line, exit code 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (config, graph, data, world size)."""

    exit_code = 2


class ConfigError(UserError):
    """An invalid configuration value or key."""


class DataError(UserError):
    """Missing or malformed dataset files."""


class TopologyError(UserError):
    """An invalid communication graph."""


class ProtocolError(RuntimeError):
    """A received frame that does not match what the protocol expects."""
