"""The architecture as the README states it: each module imports only from its own layer or
the layers below, and only the transport and the process-group setup touch torch.distributed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mcepl_dist"

# Lowest first; a module not named here sits in the layer of its package (data.*, report.*).
LAYERS: list[set[str]] = [
    {"mcepl_dist", "errors", "config", "sweepfile", "masks", "averaging", "codec", "topology",
     "data.partition", "timing", "failure"},
    {"model", "data", "data.cifar10", "data.synthetic", "transport", "dist", "metrics"},
    {"algorithms"},
    {"agent", "checkpoint"},
    {"run", "plan", "sweep", "report", "provenance"},
]
DISTRIBUTED = {"transport", "dist"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    name = ".".join(p for p in parts if p != "__init__")
    return name or "mcepl_dist"


def layer_of(name: str) -> int:
    """The layer of a module name relative to the package ("data.cifar10", "report.tables")."""
    for candidate in (name, name.split(".")[0]):
        for level, members in enumerate(LAYERS):
            if candidate in members:
                return level
    raise AssertionError(f"mcepl_dist.{name} is in no layer: add it to LAYERS")


def imports(path: Path) -> set[str]:
    """Every module this file imports (absolute names), `from pkg import sub` expanded."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            if node.module == "mcepl_dist":
                out |= {f"mcepl_dist.{a.name}" for a in node.names}
    return out


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert len(SOURCES) > 30
    for path in SOURCES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_go_only_downward(path: Path) -> None:
    me = module_name(path)
    upward = [dep for dep in imports(path) if dep.startswith("mcepl_dist.")
              and layer_of(dep.removeprefix("mcepl_dist.")) > layer_of(me)]
    assert not upward, f"mcepl_dist.{me} (layer {layer_of(me)}) imports upward: {upward}"


def test_only_transport_and_process_group_touch_torch_distributed() -> None:
    users = {module_name(p) for p in SOURCES
             if any(d == "torch.distributed" or d.startswith("torch.distributed.")
                    for d in imports(p))}
    assert users == DISTRIBUTED


def test_layer_helpers_see_a_violation(tmp_path: Path) -> None:
    """The checker itself: an upward import and a stray module are caught."""
    fake = tmp_path / "codec.py"
    fake.write_text("from mcepl_dist.agent import train\nimport torch.distributed as dist\n")
    assert {"mcepl_dist.agent", "torch.distributed"} <= imports(fake)
    assert layer_of("agent") > layer_of("codec")
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("nonexistent_module")
