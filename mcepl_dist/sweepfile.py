"""Sweep files: one experiment of the paper as variations of one base config.

A sweep file names a base config, rows (an algorithm or a setting, each with the paper's
numbers), optional columns (one config key varied across them, such as c_i), the seeds
to run, and the figures drawn from its runs. Every (row, column, seed) is one job: the
base config plus "key=value" overrides, run by `mcepl_dist.sweep` and read back by
`mcepl_dist.report`. Pure data: no torch, nothing run here.

    name: table2
    title: "Table II: data and node heterogeneity"
    base: ../default.yaml                # relative to the sweep file, else shipped
    set: {data.train_fraction: 0.2}      # overrides common to every job (optional)
    columns: {key: data.labels_per_agent, values: [3, 4, 5], label: "c_i = {}", slug: "c{}"}
    seeds: [0]                           # default for rows that name none
    rows:
      - {label: MCE-PL, paper: [.7088, .6451, .5759], seeds: [0, 1, 2]}
      - {label: ind-mask, config: ../ind_mask.yaml, paper: [.6808, .6140, .5413]}
    figures:
      - {id: fig6, kind: acc_vs_iter, column: 4, rows: [MCE-PL, ind-mask], title: "..."}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from mcepl_dist.config import packaged_file
from mcepl_dist.errors import ConfigError

FigureKind = Literal["acc_vs_iter", "acc_vs_bytes", "masks"]
FIGURE_KINDS: tuple[str, ...] = ("acc_vs_iter", "acc_vs_bytes", "masks")

_SWEEP_KEYS = {"name", "title", "note", "base", "set", "columns", "seeds", "rows", "figures"}
_ROW_KEYS = {"label", "config", "set", "paper", "seeds", "same_as"}
_COLUMN_KEYS = {"key", "values", "label", "slug"}
_FIGURE_KEYS = {"id", "kind", "title", "column", "rows", "agents", "filters", "seed"}


@dataclass(frozen=True)
class Row:
    """One row of a table: a label, its config and overrides, the paper's numbers."""

    label: str
    config: str | None  # a config file replacing the sweep's base for this row
    set: tuple[tuple[str, Any], ...]
    paper: tuple[float | None, ...]  # one per column
    seeds: tuple[int, ...]
    # (sweep, row, column) of another sweep's cell that is this row's experiment exactly
    # (Table III's p = 0.5 is Table II's MCE-PL at c_i = 4): no jobs, the report borrows.
    same_as: tuple[str, str, Any] | None = None


@dataclass(frozen=True)
class Columns:
    """The config key varied across a table's columns (None: a single column)."""

    key: str | None = None
    values: tuple[Any, ...] = (None,)
    label: str = "{}"
    slug: str = "{}"

    def title(self, value: Any) -> str:
        """A column's heading, e.g. "c_i = 4"."""
        return self.label.format(value) if self.key else "accuracy"


@dataclass(frozen=True)
class Figure:
    """A figure drawn from some rows of one column of a sweep's runs."""

    id: str
    kind: FigureKind
    title: str
    column: Any
    rows: tuple[str, ...]
    agents: tuple[int, ...] = (2, 4, 8, 6)  # masks: 1-based agents, in the paper's order
    filters: tuple[int, int] = (22, 20)  # masks: first conv1 filter shown and how many
    seed: int = 0  # masks: the seed whose run is pictured


@dataclass(frozen=True)
class Job:
    """One run of a sweep: its directory name, its cell, and how to configure it."""

    name: str
    row: str
    column: Any
    seed: int
    config: str  # the config file, as an absolute path
    overrides: tuple[str, ...]  # "key=value", applied in order

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "row": self.row, "column": self.column, "seed": self.seed,
                "config": self.config, "overrides": list(self.overrides)}


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file."""

    name: str
    title: str
    note: str
    base: str  # absolute path of the base config
    set: tuple[tuple[str, Any], ...]
    columns: Columns
    rows: tuple[Row, ...]
    figures: tuple[Figure, ...]

    def row(self, label: str) -> Row:
        """The row called `label`."""
        for r in self.rows:
            if r.label == label:
                return r
        raise ConfigError(f"sweep {self.name}: no row {label!r}")

    def paper(self, row: str, column: Any) -> float | None:
        """The paper's number for one cell (None where the paper gives none)."""
        return self.row(row).paper[self.columns.values.index(column)]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _known(raw: Any, keys: set[str], where: str) -> dict[str, Any]:
    _check(isinstance(raw, dict), f"{where}: expected a mapping, got {raw!r}")
    unknown = sorted(set(raw) - keys)
    _check(not unknown, f"{where}: unknown key {unknown[0] if unknown else ''!r}; valid keys: "
           f"{', '.join(sorted(keys))}")
    return raw


def _config_path(name: str, sweep_dir: Path | None) -> str:
    """A config named in a sweep file: beside the sweep file, else shipped with the package
    (`sweep_dir` None: not looked up, the name is kept; for reading results back)."""
    if sweep_dir is None:
        return name
    beside = sweep_dir / name
    path = beside if beside.is_file() else packaged_file(name)
    _check(path.is_file(), f"config file not found: {beside}")
    return str(path.resolve())


def _overrides(raw: Any, where: str) -> tuple[tuple[str, Any], ...]:
    """A mapping of dotted keys to values, in file order."""
    if raw is None:
        return ()
    _check(isinstance(raw, dict), f"{where}: expected a mapping of key: value, got {raw!r}")
    for key in raw:
        _check(isinstance(key, str) and bool(key), f"{where}: bad key {key!r}")
    return tuple(raw.items())


def _seeds(raw: Any, where: str) -> tuple[int, ...]:
    ok = isinstance(raw, list) and bool(raw) and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw)
    _check(ok, f"{where}: seeds must be a non-empty list of integers >= 0, got {raw!r}")
    _check(len(set(raw)) == len(raw), f"{where}: seeds repeat: {raw}")
    return tuple(raw)


def _columns(raw: Any, where: str) -> Columns:
    if raw is None:
        return Columns()
    raw = _known(raw, _COLUMN_KEYS, f"{where}: columns")
    key, values = raw.get("key"), raw.get("values")
    _check(isinstance(key, str) and bool(key), f"{where}: columns.key must be a config key")
    _check(isinstance(values, list) and bool(values), f"{where}: columns.values must be a "
           f"non-empty list")
    assert isinstance(values, list)
    _check(len({json.dumps(v) for v in values}) == len(values),
           f"{where}: columns.values repeat: {values}")
    columns = Columns(key, tuple(values), str(raw.get("label", "{}")), str(raw.get("slug", "{}")))
    try:  # the slug names job directories: each column its own, a plain file name
        slugs = [columns.slug.format(v) for v in values]
        _ = [columns.title(v) for v in values]
    except (IndexError, KeyError, ValueError) as exc:
        raise ConfigError(f"{where}: columns.label and columns.slug take one {{}}: {exc}") from None
    _check(len(set(slugs)) == len(slugs) and not any("/" in s for s in slugs),
           f"{where}: columns.slug gives the job names {slugs}: they must differ and hold no '/'")
    return columns


def _paper(raw: Any, columns: Columns, where: str) -> tuple[float | None, ...]:
    if raw is None:
        return (None,) * len(columns.values)
    values = raw if isinstance(raw, list) else [raw]
    _check(len(values) == len(columns.values), f"{where}: paper has {len(values)} numbers "
           f"but there are {len(columns.values)} columns")
    for v in values:
        ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1)
        _check(ok, f"{where}: paper numbers are accuracies in [0, 1] or null, got {v!r}")
    return tuple(None if v is None else float(v) for v in values)


def _row(raw: Any, i: int, columns: Columns, seeds: tuple[int, ...], sweep_dir: Path | None,
         where: str) -> Row:
    where = f"{where}: rows[{i}]"
    raw = _known(raw, _ROW_KEYS, where)
    label = raw.get("label")
    _check(isinstance(label, str) and bool(label), f"{where}: label is required")
    config = raw.get("config")
    _check(config is None or isinstance(config, str), f"{where}: config must be a file name")
    same_as = _same_as(raw.get("same_as"), where)
    _check(same_as is None or not ({"config", "set", "seeds"} & set(raw)),
           f"{where}: a row with same_as runs nothing: give it no config, set or seeds")
    return Row(label=label, same_as=same_as,
               config=_config_path(config, sweep_dir) if config else None,
               set=_overrides(raw.get("set"), f"{where}: set"),
               paper=_paper(raw.get("paper"), columns, where),
               seeds=_seeds(raw["seeds"], where) if "seeds" in raw else seeds)


def _same_as(raw: Any, where: str) -> tuple[str, str, Any] | None:
    """same_as: {sweep: NAME, row: LABEL, column: VALUE}: another sweep's cell."""
    if raw is None:
        return None
    raw = _known(raw, {"sweep", "row", "column"}, f"{where}: same_as")
    _check(isinstance(raw.get("sweep"), str) and isinstance(raw.get("row"), str),
           f"{where}: same_as needs sweep and row")
    return raw["sweep"], raw["row"], raw.get("column")


def _figure(raw: Any, i: int, rows: tuple[Row, ...], columns: Columns, where: str) -> Figure:
    where = f"{where}: figures[{i}]"
    raw = _known(raw, _FIGURE_KEYS, where)
    fid, kind = raw.get("id"), raw.get("kind")
    _check(isinstance(fid, str) and bool(re.fullmatch(r"[A-Za-z0-9_.-]+", fid)),
           f"{where}: id must be a file-name-safe string")
    _check(kind in FIGURE_KINDS, f"{where}: kind must be one of {', '.join(FIGURE_KINDS)}")
    column = raw.get("column")
    _check(column in columns.values, f"{where}: column {column!r} is not one of "
           f"{list(columns.values)}")
    labels = {r.label for r in rows}
    names = raw.get("rows") or [r.label for r in rows]
    _check(isinstance(names, list) and all(n in labels for n in names),
           f"{where}: rows must name rows of this sweep ({', '.join(sorted(labels))})")
    agents = raw.get("agents", [2, 4, 8, 6])
    _check(isinstance(agents, list) and all(isinstance(a, int) and a >= 1 for a in agents),
           f"{where}: agents is a list of 1-based agent numbers")
    filters = raw.get("filters", [22, 20])
    _check(isinstance(filters, list) and len(filters) == 2
           and all(isinstance(f, int) and f >= 0 for f in filters),
           f"{where}: filters is [first, count]")
    _check(isinstance(raw.get("seed", 0), int), f"{where}: seed is an integer")
    return Figure(id=fid, kind=kind, title=str(raw.get("title", fid)), column=column,
                  rows=tuple(names), agents=tuple(agents), filters=(filters[0], filters[1]),
                  seed=int(raw.get("seed", 0)))


def parse_sweep(raw: Any, path: Path, find_configs: bool = True) -> Sweep:
    """Validate a sweep file's mapping (read from `path`, which locates its configs unless
    `find_configs` is False: reading back a sweep run elsewhere needs no config files)."""
    sweep_dir = path.parent if find_configs else None
    where = f"sweep {path}"
    raw = _known(raw, _SWEEP_KEYS, where)
    name = raw.get("name")
    _check(isinstance(name, str) and bool(re.fullmatch(r"[A-Za-z0-9_.-]+", name)),
           f"{where}: name must be a file-name-safe string")
    _check(isinstance(raw.get("base"), str), f"{where}: base (a config file) is required")
    columns = _columns(raw.get("columns"), where)
    seeds = _seeds(raw.get("seeds", [0]), where)
    rows_raw = raw.get("rows")
    _check(isinstance(rows_raw, list) and bool(rows_raw), f"{where}: rows must be a "
           f"non-empty list")
    rows = tuple(_row(r, i, columns, seeds, sweep_dir, where) for i, r in enumerate(rows_raw))
    labels = [r.label for r in rows]
    _check(len(set(labels)) == len(labels), f"{where}: row labels repeat")
    slugs = [slug(r.label) for r in rows]
    _check(len(set(slugs)) == len(slugs), f"{where}: row labels {labels} give the same "
           f"directory name twice")
    figures = tuple(_figure(f, i, rows, columns, where)
                    for i, f in enumerate(raw.get("figures") or []))
    return Sweep(name=name, title=str(raw.get("title", name)), note=str(raw.get("note", "")),
                 base=_config_path(raw["base"], sweep_dir),
                 set=_overrides(raw.get("set"), f"{where}: set"), columns=columns,
                 rows=rows, figures=figures)


def load_sweep(path: str | Path) -> tuple[Sweep, dict[str, Any]]:
    """Read and validate a sweep file; also return its raw mapping (kept with the runs)."""
    path = Path(path)
    _check(path.is_file(), f"sweep file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"sweep {path} is not valid YAML: {exc}".splitlines()[0]) from None
    return parse_sweep(raw, path.resolve()), raw


def slug(text: str) -> str:
    """A directory-name form of a label: "MCE-PL(0.3)" -> "mce-pl-0.3"."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "row"


def override(key: str, value: Any) -> str:
    """A "key=value" override whose value parses back (as YAML) to `value`.

    Dumped as YAML, not JSON: JSON writes 1e-05 and YAML 1.1 reads that back as a string.
    """
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31 - 1, allow_unicode=True)
    text = text.rstrip("\n").removesuffix("\n...")  # a scalar ends with a "..." line
    return f"{key}={text}"


def jobs(sweep: Sweep, extra: tuple[str, ...] = ()) -> list[Job]:
    """Every (row, column, seed) of the sweep, rows first, then columns, then seeds (rows
    with same_as have none).

    Overrides apply in this order: the sweep's `set`, the row's `set`, the column value,
    the seed, then `extra` (the sweep command's --set, e.g. a shorter budget).
    """
    out = []
    for row in sweep.rows:
        if row.same_as is not None:
            continue
        for column in sweep.columns.values:
            for seed in row.seeds:
                sets = [override(k, v) for k, v in (*sweep.set, *row.set)]
                if sweep.columns.key:
                    sets.append(override(sweep.columns.key, column))
                sets += [override("seed", seed), *extra]
                parts = [slug(row.label)]
                if sweep.columns.key:
                    parts.append(sweep.columns.slug.format(column))
                parts.append(f"s{seed}")
                out.append(Job(name="_".join(parts), row=row.label, column=column, seed=seed,
                               config=row.config or sweep.base, overrides=tuple(sets)))
    return out
