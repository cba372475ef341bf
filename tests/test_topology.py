"""Communication graphs: the shipped paper graph, generators, files and validation."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from mcepl_dist import topology as T
from mcepl_dist.config import packaged_file
from mcepl_dist.errors import TopologyError


def _degrees(adj: np.ndarray) -> np.ndarray:
    return adj.sum(axis=1)


def test_paper_graph_has_104_edges_and_degrees_2_to_14() -> None:
    adj = T.build_graph("file", 20, path=packaged_file("topology_er20_p05.txt"))
    assert adj.shape == (20, 20)
    assert int(adj.sum()) == 2 * 104
    deg = _degrees(adj)
    assert deg.min() == 2
    assert deg.max() == 14
    assert np.array_equal(adj, adj.T)
    assert not np.diag(adj).any()
    assert nx.is_connected(nx.from_numpy_array(adj))


def test_paper_graph_matches_raw_file() -> None:
    raw = np.loadtxt(packaged_file("topology_er20_p05.txt"), dtype=int)
    adj = T.load_graph_file(packaged_file("topology_er20_p05.txt"), 20)
    np.testing.assert_array_equal(adj, raw)


def test_erdos_renyi_seeded_reproducible_and_connected() -> None:
    a = T.erdos_renyi(20, 0.5, seed=4, max_tries=100)
    b = T.erdos_renyi(20, 0.5, seed=4, max_tries=100)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20, 20)
    assert np.array_equal(a, a.T)
    assert not np.diag(a).any()
    assert nx.is_connected(nx.from_numpy_array(a))
    others = [T.erdos_renyi(20, 0.5, seed=s, max_tries=100) for s in (5, 6, 7)]
    assert any(not np.array_equal(a, o) for o in others)


def test_erdos_renyi_sparse_p_still_connected() -> None:
    for seed in range(3):
        adj = T.build_graph("er", 12, p=0.3, seed=seed, max_tries=1000)
        assert nx.is_connected(nx.from_numpy_array(adj))


def test_erdos_renyi_gives_up_after_max_tries() -> None:
    with pytest.raises(TopologyError, match="max_tries|draws"):
        T.erdos_renyi(30, 0.01, seed=0, max_tries=3)


@pytest.mark.parametrize("p", [0.0, -0.1, 1.5])
def test_erdos_renyi_p_out_of_range(p: float) -> None:
    with pytest.raises(TopologyError):
        T.erdos_renyi(10, p, seed=0, max_tries=10)


def test_er_p_one_is_complete() -> None:
    np.testing.assert_array_equal(T.erdos_renyi(5, 1.0, seed=0, max_tries=1), T.complete(5))


def test_ring_degrees() -> None:
    adj = T.build_graph("ring", 6)
    assert _degrees(adj).tolist() == [2] * 6
    assert T.neighbors(adj, 0) == [1, 5]
    assert T.neighbors(adj, 3) == [2, 4]
    assert _degrees(T.ring(2)).tolist() == [1, 1]


def test_complete_degrees() -> None:
    adj = T.build_graph("complete", 5)
    assert _degrees(adj).tolist() == [4] * 5
    assert int(adj.sum()) == 5 * 4
    assert T.neighbors(adj, 2) == [0, 1, 3, 4]


def test_neighbors_sorted_ints() -> None:
    adj = np.array([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    assert T.neighbors(adj, 0) == [1, 3]
    assert T.neighbors(adj, 2) == [1]
    assert all(type(j) is int for j in T.neighbors(adj, 1))


def test_unknown_kind() -> None:
    with pytest.raises(TopologyError, match="star"):
        T.build_graph("star", 4)


def test_file_kind_without_path() -> None:
    with pytest.raises(TopologyError):
        T.build_graph("file", 4)


# --------------------------------------------------------------------------------------
# validation


def test_validate_non_square() -> None:
    with pytest.raises(TopologyError, match="square"):
        T.validate_adjacency(np.zeros((3, 4), dtype=int), 3)


def test_validate_wrong_size() -> None:
    with pytest.raises(TopologyError, match="4 nodes"):
        T.validate_adjacency(T.ring(4), 5)


def test_validate_asymmetric() -> None:
    adj = T.ring(4).astype(int)
    adj[0, 2] = 1
    with pytest.raises(TopologyError, match="symmetric"):
        T.validate_adjacency(adj, 4)


def test_validate_self_loop() -> None:
    adj = T.ring(4).astype(int)
    adj[2, 2] = 1
    with pytest.raises(TopologyError, match="self loop at node 2"):
        T.validate_adjacency(adj, 4)


def test_validate_disconnected() -> None:
    adj = np.zeros((4, 4), dtype=int)
    adj[0, 1] = adj[1, 0] = 1
    adj[2, 3] = adj[3, 2] = 1
    with pytest.raises(TopologyError, match="not connected"):
        T.validate_adjacency(adj, 4)


def test_validate_non_binary() -> None:
    adj = T.ring(3).astype(int) * 2
    with pytest.raises(TopologyError, match="0 or 1"):
        T.validate_adjacency(adj, 3)


def test_validate_returns_int8_copy() -> None:
    adj = T.ring(5).astype(np.int64)
    out = T.validate_adjacency(adj, 5)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, adj)


def test_single_agent_graph_is_valid() -> None:
    out = T.validate_adjacency(np.zeros((1, 1), dtype=int), 1)
    assert out.shape == (1, 1)


# --------------------------------------------------------------------------------------
# graph files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="not found"):
        T.build_graph("file", 4, path=tmp_path / "nope.txt")


def test_matrix_file_wrong_size(tmp_path: Path) -> None:
    f = tmp_path / "g.txt"
    f.write_text("0 1 1\n1 0 1\n1 1 0\n")
    with pytest.raises(TopologyError, match="3 nodes"):
        T.load_graph_file(f, 4)


def test_matrix_file_with_comments(tmp_path: Path) -> None:
    f = tmp_path / "g.txt"
    f.write_text("# a triangle\n0 1 1\n\n1 0 1\n1 1 0\n")
    np.testing.assert_array_equal(T.load_graph_file(f, 3), T.complete(3))


def test_edge_list_file(tmp_path: Path) -> None:
    f = tmp_path / "edges.txt"
    f.write_text("# 0-based\n0 1\n1 2\n2 3\n3 0\n0 2\n")
    adj = T.load_graph_file(f, 4)
    expected = np.zeros((4, 4), dtype=int)
    for i, j in [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]:
        expected[i, j] = expected[j, i] = 1
    np.testing.assert_array_equal(adj, expected)
    assert T.neighbors(adj, 0) == [1, 2, 3]


def test_edge_list_file_with_two_edges(tmp_path: Path) -> None:
    # a path 0-1-2 has exactly two edges; it must not be mistaken for a 2x2 matrix
    f = tmp_path / "path.txt"
    f.write_text("0 1\n1 2\n")
    adj = T.load_graph_file(f, 3)
    np.testing.assert_array_equal(adj, [[0, 1, 0], [1, 0, 1], [0, 1, 0]])


@pytest.mark.parametrize(("text", "n", "message"), [
    ("0 1\n1 2\n2 7\n", 4, "outside"),
    ("0 1\n1 2\n2 2\n", 3, "self loop"),
    ("0 1\n2 3\n1 0\n", 4, "not connected"),
])
def test_bad_edge_lists(tmp_path: Path, text: str, n: int, message: str) -> None:
    f = tmp_path / "edges.txt"
    f.write_text(text)
    with pytest.raises(TopologyError, match=message):
        T.load_graph_file(f, n)


def test_empty_and_non_numeric_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(TopologyError, match="empty"):
        T.load_graph_file(empty, 3)
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1 x\n1 0 1\n1 1 0\n")
    with pytest.raises(TopologyError, match="non-numeric"):
        T.load_graph_file(bad, 3)
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("0 1 1\n1 0\n1 1 0\n")
    with pytest.raises(TopologyError, match="different lengths"):
        T.load_graph_file(ragged, 3)
