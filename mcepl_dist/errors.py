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


class PeerError(RuntimeError):
    """A neighbour that died or stopped answering during an exchange round."""

    def __init__(self, round: int, peer: int | list[int], cause: str) -> None:
        self.round, self.peer = round, peer
        who = (f"neighbour {peer}" if isinstance(peer, int)
               else f"one of neighbours {', '.join(map(str, peer))}")
        if "timed out" in cause.lower():
            what = "did not answer within comm.timeout_s (alive but stuck, or unreachable)"
        else:
            what = "closed the connection (its process ended or failed)"
        super().__init__(f"{who} {what}")


class ElsewhereError(UserError):
    """A problem another rank saw and reports; this rank stops with it, silently."""
