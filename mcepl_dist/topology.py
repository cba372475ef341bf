"""Communication graphs: build (file, Erdos-Renyi, ring, complete) and validate (pure)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np

from mcepl_dist.errors import TopologyError


def validate_adjacency(adj: np.ndarray, num_agents: int, source: str = "graph") -> np.ndarray:
    """Check a 0/1 adjacency matrix: square, right size, symmetric, no self loops, connected."""
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise TopologyError(f"{source}: adjacency matrix must be square, got shape {adj.shape}")
    if adj.shape[0] != num_agents:
        raise TopologyError(f"{source}: graph has {adj.shape[0]} nodes but the config has "
                            f"{num_agents} agents")
    if not np.isin(adj, (0, 1)).all():
        raise TopologyError(f"{source}: adjacency entries must be 0 or 1")
    if not np.array_equal(adj, adj.T):
        i, j = np.argwhere(adj != adj.T)[0]
        raise TopologyError(f"{source}: adjacency is not symmetric (entry {i},{j})")
    if np.any(np.diag(adj)):
        raise TopologyError(f"{source}: self loop at node {int(np.flatnonzero(np.diag(adj))[0])}")
    if num_agents > 1 and not nx.is_connected(nx.from_numpy_array(adj)):
        raise TopologyError(f"{source}: graph is not connected")
    return adj.astype(np.int8)


def _read_matrix_or_edges(path: Path, num_agents: int) -> np.ndarray:
    """Parse a whitespace adjacency matrix, or an edge list of 'i j' lines (0-based)."""
    try:
        rows = [ln.split() for ln in path.read_text().splitlines()]
    except OSError as exc:
        raise TopologyError(f"cannot read graph file {path}: {exc.strerror}") from None
    rows = [r for r in rows if r and not r[0].startswith("#")]
    if not rows:
        raise TopologyError(f"graph file {path} is empty")
    try:
        values = [[int(float(v)) for v in r] for r in rows]
    except ValueError:
        raise TopologyError(f"graph file {path}: non-numeric entry") from None
    # A square file with one row per agent is a matrix; any other two-column file is an
    # edge list (for 2 agents both readings give the same graph).
    is_matrix = len(values) == num_agents and all(len(r) == num_agents for r in values)
    is_edge_list = not is_matrix and all(len(r) == 2 for r in values)
    if not is_edge_list:
        if len({len(r) for r in values}) != 1:
            raise TopologyError(f"graph file {path}: rows of different lengths")
        return np.array(values)
    adj = np.zeros((num_agents, num_agents), dtype=np.int64)
    for i, j in values:
        if not (0 <= i < num_agents and 0 <= j < num_agents):
            raise TopologyError(f"graph file {path}: edge ({i}, {j}) names a node outside "
                                f"0..{num_agents - 1}")
        adj[i, j] = adj[j, i] = 1
    if np.any(np.diag(adj)):
        raise TopologyError(f"graph file {path}: self loop in the edge list")
    return adj


def load_graph_file(path: Path, num_agents: int) -> np.ndarray:
    """Read and validate a graph file (adjacency matrix or edge list)."""
    if not path.is_file():
        raise TopologyError(f"graph file not found: {path}")
    return validate_adjacency(_read_matrix_or_edges(path, num_agents), num_agents, str(path))


def erdos_renyi(num_agents: int, p: float, seed: int, max_tries: int) -> np.ndarray:
    """A connected G(n, p) graph: seeded draws, redrawn until connected, at most max_tries."""
    if not 0 < p <= 1:
        raise TopologyError(f"Erdos-Renyi probability must be in (0, 1], got {p}")
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        g = nx.gnp_random_graph(num_agents, p, seed=int(rng.integers(2**31)))
        if num_agents == 1 or nx.is_connected(g):
            return nx.to_numpy_array(g, dtype=np.int8, nodelist=range(num_agents))
    raise TopologyError(f"no connected Erdos-Renyi graph with n={num_agents}, p={p} in "
                        f"{max_tries} draws; raise topology.p or topology.max_tries")


def ring(num_agents: int) -> np.ndarray:
    """Each agent linked to its two ring neighbours (one neighbour when n = 2)."""
    g = nx.cycle_graph(num_agents) if num_agents > 2 else nx.path_graph(num_agents)
    return nx.to_numpy_array(g, dtype=np.int8, nodelist=range(num_agents))


def complete(num_agents: int) -> np.ndarray:
    """Every agent linked to every other."""
    return nx.to_numpy_array(nx.complete_graph(num_agents), dtype=np.int8,
                             nodelist=range(num_agents))


def build_graph(kind: str, num_agents: int, *, p: float = 0.5, seed: int = 0,
                max_tries: int = 1000, path: Path | None = None) -> np.ndarray:
    """The validated adjacency matrix for a topology kind."""
    if kind == "file":
        if path is None:
            raise TopologyError("topology.path is required for kind: file")
        return load_graph_file(path, num_agents)
    builders = {
        "er": lambda: erdos_renyi(num_agents, p, seed, max_tries),
        "ring": lambda: ring(num_agents),
        "complete": lambda: complete(num_agents),
    }
    if kind not in builders:
        raise TopologyError(f"unknown topology kind {kind!r}")
    return validate_adjacency(builders[kind](), num_agents, f"{kind} graph")


def neighbors(adj: np.ndarray, node: int) -> list[int]:
    """Sorted neighbour ranks of one node."""
    return [int(j) for j in np.flatnonzero(adj[node])]


def mixing_weights(adj: np.ndarray, node: int, scheme: str = "uniform") -> dict[int, float]:
    """Row `node` of the gossip matrix, self included (DSGD's averaging weights).

    uniform: 1 / (deg_i + 1) for i and each neighbour. metropolis (Metropolis-Hastings):
    1 / (1 + max(deg_i, deg_j)) per neighbour j, the rest on i; doubly stochastic.
    """
    nbrs = neighbors(adj, node)
    if scheme == "uniform":
        share = 1.0 / (len(nbrs) + 1)
        return {node: share, **{j: share for j in nbrs}}
    if scheme == "metropolis":
        deg = adj.sum(axis=1)
        row = {j: 1.0 / (1.0 + max(int(deg[node]), int(deg[j]))) for j in nbrs}
        return {node: 1.0 - sum(row.values()), **row}
    raise TopologyError(f"unknown mixing scheme {scheme!r} (uniform or metropolis)")
