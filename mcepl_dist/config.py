"""Run configuration: frozen dataclasses, YAML loading, dotted overrides, validation.

Every knob of ALGORITHM.md lives here with its default. `load_config` rejects unknown keys,
wrong types and out-of-range values with a one-line `ConfigError` before anything runs.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from mcepl_dist.errors import ConfigError

# The paper's per-agent retention ratios for agents 1..20 (Tables II, III).
PAPER_RETENTION: tuple[float, ...] = (
    0.4, 0.4, 0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.2,
    0.4, 0.2, 0.3, 0.3, 0.4, 0.3, 0.1, 0.1, 0.3, 0.3,
)  # fmt: skip

ALGORITHMS = ("mcepl", "ind_mask", "dsgd", "fedavg", "dsgd_prox", "lottery_dsgd", "ind_weipru",
              "avr_weipru", "par_weipru", "dispfl")
# The dense real-valued methods: they train every weight and ignore agents.retention.
DENSE_ALGORITHMS = ("dsgd", "dsgd_prox", "fedavg")
# Those whose per-iteration work may be several local SGD steps (algorithm.local_steps);
# the others count their schedules in local steps, so they keep one per iteration.
LOCAL_STEP_ALGORITHMS = DENSE_ALGORITHMS


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True, kw_only=True)
class AlgorithmConfig:
    """Which algorithm runs and its knobs (ALGORITHM.md, 'One MCE-PL iteration')."""

    name: str = "mcepl"
    eta: float = 1.0  # learning rate on the scores z (step 1); paper: 1.0, authors' code: 10
    eta_ft: float | None = None  # fine-tuning rate (step 4); None = eta, as in the paper
    lam: float = 0.0  # group-lasso weight lambda (eqs. 5-7); paper 0.001 (README: it collapses)
    fil_threshold: int = 20  # Fil zeroes filters/rows keeping <= this many ones; 0 disables
    fc_retention: float | None = None  # None = r_i for FC layers too (paper); authors: 0.9
    neighbor_init: Literal["exchange", "bernoulli"] = "exchange"  # masks before iteration 1
    bernoulli_p: float = 0.5  # density of the shared pattern when neighbor_init = bernoulli
    # c(z) of the intermediate aggregation (step 2, eq. 16a): the paper prints max |z| there,
    # its (11) and (18) and the authors' code use the mean |z|. Step 5 always uses the mean.
    scale_16a: Literal["mean", "max"] = "mean"
    weight_decay: float = 0.0  # L2 on z, added to G (authors' code: 5e-4)
    momentum: float = 0.0  # heavy-ball momentum on z (paper: plain SGD)
    # Real-valued baselines (README, "Baselines"); ignored by the mask methods.
    lr: float | None = None  # SGD rate on w; None = 0.01 (the paper's Table I rate)
    mixing: Literal["uniform", "metropolis"] = "uniform"  # DSGD-family gossip weights
    prox_mu: float = 0.01  # dsgd_prox: FedProx's mu
    # SGD steps (one minibatch each) between two exchanges: FedProx's and FedAvg's local
    # work. At 1, DSGDProx is DSGD: its proximal gradient is zero at w = w_ref.
    local_steps: int = 1
    lottery_threshold: float = 0.5  # lottery_dsgd: local accuracy that triggers a prune
    lottery_rate: float = 0.2  # lottery_dsgd: fraction of the kept weights pruned each time
    lottery_window: int = 10  # lottery_dsgd: iterations of minibatch accuracy averaged
    dispfl_alpha: float = 0.5  # dispfl: initial prune-and-regrow fraction (cosine-annealed)
    dispfl_every: int = 10  # dispfl: iterations between mask updates

    def __post_init__(self) -> None:
        _check(self.name in ALGORITHMS, f"algorithm.name: unknown algorithm {self.name!r}; "
               f"choose one of {', '.join(ALGORITHMS)}")
        _check(self.eta > 0, f"algorithm.eta must be > 0, got {self.eta}")
        _check(self.eta_ft is None or self.eta_ft >= 0,
               f"algorithm.eta_ft must be >= 0 or null, got {self.eta_ft}")
        _check(self.lam >= 0, f"algorithm.lam must be >= 0, got {self.lam}")
        _check(self.fil_threshold >= 0,
               f"algorithm.fil_threshold must be >= 0, got {self.fil_threshold}")
        _check(self.fc_retention is None or 0 < self.fc_retention <= 1,
               f"algorithm.fc_retention must be in (0, 1] or null, got {self.fc_retention}")
        _check(0 < self.bernoulli_p <= 1,
               f"algorithm.bernoulli_p must be in (0, 1], got {self.bernoulli_p}")
        _check(self.scale_16a in ("mean", "max"),
               f"algorithm.scale_16a must be mean or max, got {self.scale_16a!r}")
        _check(self.weight_decay >= 0,
               f"algorithm.weight_decay must be >= 0, got {self.weight_decay}")
        _check(0 <= self.momentum < 1, f"algorithm.momentum must be in [0, 1), got {self.momentum}")
        _check(self.lr is None or self.lr > 0, f"algorithm.lr must be > 0 or null, got {self.lr}")
        _check(self.mixing in ("uniform", "metropolis"),
               f"algorithm.mixing must be uniform or metropolis, got {self.mixing!r}")
        _check(self.prox_mu >= 0, f"algorithm.prox_mu must be >= 0, got {self.prox_mu}")
        _check(self.local_steps >= 1,
               f"algorithm.local_steps must be >= 1, got {self.local_steps}")
        _check(self.local_steps == 1 or self.name in LOCAL_STEP_ALGORITHMS,
               f"algorithm.local_steps applies to {', '.join(LOCAL_STEP_ALGORITHMS)} only "
               f"(got {self.local_steps} for {self.name})")
        _check(0 <= self.lottery_threshold <= 1,
               f"algorithm.lottery_threshold must be in [0, 1], got {self.lottery_threshold}")
        _check(0 < self.lottery_rate < 1,
               f"algorithm.lottery_rate must be in (0, 1), got {self.lottery_rate}")
        _check(self.lottery_window >= 1,
               f"algorithm.lottery_window must be >= 1, got {self.lottery_window}")
        _check(0 <= self.dispfl_alpha < 1,
               f"algorithm.dispfl_alpha must be in [0, 1), got {self.dispfl_alpha}")
        _check(self.dispfl_every >= 1,
               f"algorithm.dispfl_every must be >= 1, got {self.dispfl_every}")

    @property
    def fine_tune_rate(self) -> float:
        """eta_ft, defaulting to eta as the paper's eq. (17) writes it."""
        return self.eta if self.eta_ft is None else self.eta_ft


@dataclass(frozen=True, kw_only=True)
class AgentsConfig:
    """How many agents and each one's retention ratio r_i."""

    num: int = 20
    retention: float | list[float] = field(default_factory=lambda: list(PAPER_RETENTION))

    def __post_init__(self) -> None:
        _check(self.num >= 1, f"agents.num must be >= 1, got {self.num}")
        ratios = self.retention if isinstance(self.retention, list) else [self.retention]
        if isinstance(self.retention, list):
            _check(len(ratios) == self.num, f"agents.retention has {len(ratios)} values but "
                   f"agents.num is {self.num}; give one per agent or a single number")
        for r in ratios:
            _check(0 < r <= 1, f"agents.retention values must be in (0, 1], got {r}")

    def ratio(self, agent: int) -> float:
        """r_i of one agent."""
        if isinstance(self.retention, list):
            return float(self.retention[agent])
        return float(self.retention)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Dataset, where it lives, and the label-skew partition."""

    name: Literal["cifar10", "synthetic"] = "cifar10"
    root: str | None = None  # None: $MCEPL_DATA, else ./data/cifar-10-batches-py
    download: bool = False
    labels_per_agent: int = 4  # c_i
    label_table: str | None = "label_tables.yaml"  # None: seeded random c_i labels per agent
    train_fraction: float = 1.0  # authors' loader: 0.2
    synthetic_train_per_class: int = 500  # synthetic dataset size per class
    synthetic_test_per_class: int = 100

    def __post_init__(self) -> None:
        _check(1 <= self.labels_per_agent <= 10,
               f"data.labels_per_agent must be in 1..10, got {self.labels_per_agent}")
        _check(0 < self.train_fraction <= 1,
               f"data.train_fraction must be in (0, 1], got {self.train_fraction}")
        _check(self.synthetic_train_per_class >= 1 and self.synthetic_test_per_class >= 1,
               "data.synthetic_*_per_class must be >= 1")

    def resolved_root(self) -> Path:
        """The CIFAR-10 batch directory: data.root, else $MCEPL_DATA, else ./data/..."""
        if self.root:
            return Path(self.root).expanduser()
        env = os.environ.get("MCEPL_DATA")
        return Path(env).expanduser() if env else Path("data/cifar-10-batches-py")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The paper's masked AlexNet and how its fixed shared weights w are drawn."""

    width: float = 1.0  # channel multiplier; 1.0 = the paper's model (1,227,328 masked weights)
    weight_init: Literal[
        "kaiming_normal", "kaiming_scaled", "signed_constant", "torch_default", "uniform"
    ] = "kaiming_normal"
    logits_elu: bool = False  # the authors' code applied ELU to the logits

    def __post_init__(self) -> None:
        _check(0 < self.width <= 4, f"model.width must be in (0, 4], got {self.width}")


@dataclass(frozen=True, kw_only=True)
class TopologyConfig:
    """The communication graph: a file, or a seeded generator."""

    kind: Literal["file", "er", "ring", "complete"] = "file"
    path: str | None = "topology_er20_p05.txt"  # adjacency matrix or edge list (kind: file)
    p: float = 0.5  # Erdos-Renyi edge probability
    max_tries: int = 1000  # ER redraws before giving up on a connected graph

    def __post_init__(self) -> None:
        _check(0 < self.p <= 1, f"topology.p must be in (0, 1], got {self.p}")
        _check(self.max_tries >= 1, f"topology.max_tries must be >= 1, got {self.max_tries}")
        _check(self.kind != "file" or bool(self.path), "topology.path is required for kind: file")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Iteration budget, batch sizes, evaluation and logging cadence."""

    iterations: int = 400
    batch_size: int = 128
    eval_every: int = 20  # also evaluated at the last iteration; 0 = only at the end
    eval_batch_size: int = 250  # small: 20 ranks x a 1000-image forward pass overflow 24 GiB
    log_every: int = 1  # progress line cadence on rank 0

    def __post_init__(self) -> None:
        _check(self.iterations >= 1, f"train.iterations must be >= 1, got {self.iterations}")
        _check(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        _check(self.eval_every >= 0, f"train.eval_every must be >= 0, got {self.eval_every}")
        _check(self.eval_batch_size >= 1,
               f"train.eval_batch_size must be >= 1, got {self.eval_batch_size}")
        _check(self.log_every >= 1, f"train.log_every must be >= 1, got {self.log_every}")


@dataclass(frozen=True, kw_only=True)
class CommConfig:
    """Transport: backend, compute device, and the timeout that ends a hung run."""

    backend: Literal["auto", "gloo", "nccl"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        _check(self.timeout_s > 0, f"comm.timeout_s must be > 0, got {self.timeout_s}")


@dataclass(frozen=True, kw_only=True)
class CheckpointConfig:
    """Periodic per-rank checkpoints, for `--resume RUN_DIR` after a crash."""

    every: int = 50  # save every this many iterations; 0 = never
    keep: int = 2  # newest checkpoints kept per rank

    def __post_init__(self) -> None:
        _check(self.every >= 0, f"checkpoint.every must be >= 0, got {self.every}")
        _check(self.keep >= 1, f"checkpoint.keep must be >= 1, got {self.keep}")


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    """What the run writes besides metrics."""

    save_masks: bool = True


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole run. The default is the paper's Table II setting (c_i = 4)."""

    name: str = "mcepl"
    seed: int = 0
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    agents: AgentsConfig = field(default_factory=AgentsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    comm: CommConfig = field(default_factory=CommConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    base_dir: str = field(default="", metadata={"internal": True})  # dir of the YAML file

    def __post_init__(self) -> None:
        _check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _check(bool(self.name) and "/" not in self.name, f"name must be a plain word, "
               f"got {self.name!r}")


# --------------------------------------------------------------------------------------
# Loading


_SOURCE_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# In a source checkout, its own configs/ (decided once, at import).
_CHECKOUT = (_SOURCE_CONFIGS.parent / "pyproject.toml").is_file() and _SOURCE_CONFIGS.is_dir()


def packaged_file(name: str) -> Path:
    """Path of a file shipped in the package's configs (works in a wheel and a checkout).

    From a source checkout, its own configs/: code and configs then come from one tree
    even when another checkout is installed (editable) and this one is on PYTHONPATH.
    """
    if _CHECKOUT:
        return _SOURCE_CONFIGS / name
    try:
        return Path(str(importlib.resources.files("mcepl_dist.configs").joinpath(name)))
    except ModuleNotFoundError:  # neither installed nor a checkout: configs/ beside it
        return _SOURCE_CONFIGS / name


def resolve_path(cfg: Config, path: str) -> Path:
    """A path named in a config: absolute, else relative to the config file, else packaged."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if cfg.base_dir and (Path(cfg.base_dir) / p).exists():
        return Path(cfg.base_dir) / p
    if p.exists():
        return p
    shipped = packaged_file(path)
    return shipped if shipped.exists() else p


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`; ints are accepted for floats."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arm in get_args(tp):
            try:
                return _coerce(value, arm, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        _check(value in get_args(tp), f"{key}: expected one of "
               f"{', '.join(map(str, get_args(tp)))}, got {value!r}")
        return value
    if origin is list:
        _check(isinstance(value, list), f"{key}: expected a list, got {value!r}")
        (item,) = get_args(tp)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is type(None):
        _check(value is None, f"{key}: expected null, got {value!r}")
        return None
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        _check(ok, f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp in (int, bool, str):
        ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
        _check(ok, f"{key}: expected {tp.__name__}, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    """Construct dataclass `cls` from a nested dict, rejecting unknown keys."""
    _check(isinstance(raw, dict), f"{prefix or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {prefix + unknown[0]!r}; valid keys here: "
                          f"{', '.join(sorted(fields))}")
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        tp = hints[name]
        key = f"{prefix}{name}"
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key + ".")
        else:
            kwargs[name] = _coerce(value, tp, key)
    return cls(**kwargs)


def _parse_scalar(text: str) -> Any:
    """A --set value, parsed as YAML so numbers, lists, null and booleans work."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse override value {text!r}: {exc}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted `key=value` overrides to a nested dict (returns a new dict)."""
    out = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for item in overrides:
        key, sep, text = item.partition("=")
        _check(bool(sep) and bool(key), f"--set expects key=value, got {item!r}")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            _check(isinstance(node, dict), f"--set {key}: {part!r} is not a section")
        node[parts[-1]] = _parse_scalar(text)
    return out


def read_config_file(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's raw mapping. `base: FILE` (beside it, else shipped with the package)
    names a config it extends: the file's own keys override the base's, section by section."""
    _check(path.is_file(), f"config file not found: {path}")
    _check(path.resolve() not in chain, f"config {path}: circular base chain")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}".splitlines()[0]) from None
    _check(isinstance(raw, dict), f"config {path}: expected a mapping at the top level")
    base = raw.pop("base", None)
    if base is None:
        return raw
    _check(isinstance(base, str), f"config {path}: base must be a file name, got {base!r}")
    beside = path.parent / base
    parent = read_config_file(beside if beside.is_file() else packaged_file(base),
                              (*chain, path.resolve()))
    return _merge(parent, raw)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, recursing into sections (mappings)."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (None = the embedded default), apply overrides, validate."""
    raw: dict[str, Any] = {}
    base_dir = ""
    if path is not None:
        raw = read_config_file(Path(path))
        base_dir = str(Path(path).resolve().parent)
    raw = apply_overrides(raw, overrides or [])
    cfg = _build(Config, raw, "")
    return dataclasses.replace(cfg, base_dir=base_dir)


def with_resolved_paths(cfg: Config) -> Config:
    """The config with file paths made absolute, unless they name a file the package ships,
    so the run directory's config.yaml works from anywhere."""

    def fix(path: str | None) -> str | None:
        if path is None or resolve_path(cfg, path) == packaged_file(path):
            return path
        return str(resolve_path(cfg, path).resolve())

    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, label_table=fix(cfg.data.label_table)),
        topology=dataclasses.replace(cfg.topology, path=fix(cfg.topology.path)),
    )


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data (for config.yaml in the run directory)."""
    data = dataclasses.asdict(cfg)
    data.pop("base_dir", None)
    return data


# Keys that decide where and how a run executes, not its numbers: two runs that differ
# only in these count as the same run (sweep notes, the report's cells, bench/check_plan.py).
NEUTRAL_KEYS = ("checkpoint.", "output.", "comm.", "train.log_every", "train.eval_every",
                "train.eval_batch_size", "data.root", "data.download")


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config dict as {"a.b": value}."""
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    return {k: v for key, sub in node.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}


def config_difference(a: Config, b: Config) -> str | None:
    """The first key whose value differs, as "key a.b: X != Y"; None when equal."""
    fa, fb = _flat(config_to_dict(a)), _flat(config_to_dict(b))
    for key in sorted(set(fa) | set(fb)):
        if fa.get(key) != fb.get(key):
            return f"key {key}: {fa.get(key)!r} != {fb.get(key)!r}"
    return None


def result_config(cfg: Config) -> dict[str, Any]:
    """The flat keys that decide a run's numbers (NEUTRAL_KEYS dropped), with eta_ft written
    out as the run uses it (null = eta): configs that train the same compare equal, so a
    knob row that only restates another row's setting is seen to repeat it."""
    algo = dataclasses.replace(cfg.algorithm, eta_ft=cfg.algorithm.fine_tune_rate)
    flat = _flat(config_to_dict(dataclasses.replace(cfg, algorithm=algo)))
    return {k: v for k, v in flat.items() if not k.startswith(NEUTRAL_KEYS)}


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
