"""Settings (the knob table's values, knobs.py) -> the library's frozen, validated configs of data, model and
training: the one path from what a student set to what trains, for the pages, the live races, the lesson
check and the studies alike.

    data = data_config(settings)                 # DataConfig | CensusConfig | FunnelConfig
    model = model_config("mmoe", settings)       # ModelConfig
    train = train_config(settings, eval_every=50)

Each builder first checks every knob value it is given against the table (`checked`), so settings from
anywhere (a run record, a notebook) never size an allocation the table would refuse.
"""

from __future__ import annotations

from ..config import ConfigError
from ..data.census import CensusConfig
from ..data.funnel import FunnelConfig
from ..data.synthetic import DataConfig
from ..data.table import held, TableConfig
from ..models import ModelConfig
from ..models.registry import BY_LABEL, ENTRY, REGISTRY
from ..train.runs import sized_model_config
from ..train.training import TrainConfig
from .knob import COMMAND_LINE, KnobError, Settings
from .knobs import HOLDOUT, KNOBS, funnel, names, own_file, synthetic, task_count


def checked(s: Settings, limits: bool = True) -> Settings:
    """`s` with the command line's own knobs at their defaults where it lacks them (the app's settings never
    have them), if every knob value in it has its knob's type and, with `limits`, range; else ConfigError.
    The command line builds without `limits`: it runs on the user's own machine, where the configs' limits apply."""
    for name, value in s.items():
        if name in KNOBS:
            try:
                KNOBS[name].check(value, limits)
            except KnobError as error:
                raise ConfigError(f"{KNOBS[name].label} ({name}) {error}") from None
    return {**{name: knob.default for name, knob in KNOBS.items() if knob.section == COMMAND_LINE}, **s}


def data_config(s: Settings, limits: bool = True) -> DataConfig | CensusConfig | FunnelConfig | TableConfig:
    """The task set of these settings (ConfigError when the combination is impossible). An own file's must be held
    in this process (data/table.py: the page, the worker and the command line register it first)."""
    s = checked(s, limits)
    if own_file(s):
        if not s["file"]:
            raise ConfigError("data = file needs your file: upload a CSV or Parquet file on the Data page "
                              "(on the command line: --data csv:PATH).")
        types = s["label_types"] or held(s["file"]).detected(s["labels"])
        return TableConfig(file=s["file"], labels=tuple(s["labels"]), task_types=tuple(types), inputs=tuple(s["inputs"]),
                           user=s["user_column"], missing=s["missing"], seed=s["seed"])
    if funnel(s):
        return FunnelConfig(correlation=s["corr"], selection=s["selection"], bias=s["bias"], click_rate=s["ctr"], cvr_rate=s["cvr"],
                            features=s["features"], samples=s["samples"], holdout=s["holdout"] or HOLDOUT["funnel"],
                            seed=s["seed"])
    if not synthetic(s):
        return CensusConfig(group=int(s["source"].split(":")[1]), samples=s["samples"], holdout=s["holdout"] or HOLDOUT["census"],
                            seed=s["seed"])
    tasks = s["tasks"]
    for name in ("dense", "sparse", "binary"):
        missing = sorted(k for k in s[name] if not 0 <= k < tasks)
        if missing:
            raise ConfigError(f"{KNOBS[name].flag or name} names task(s) {missing}, but tasks are numbered 0..{tasks - 1}.")
    rates = {k: s["rate"] for k in s["sparse"]}
    if s["positive_rates"]:
        if len(s["positive_rates"]) != len(s["binary"]):
            raise ConfigError(f"--positive-rates needs one rate per binary task ({len(s['binary'])}), got {len(s['positive_rates'])}.")
        rates.update(zip(s["binary"], s["positive_rates"]))
    binary = set(s["dense"]) | set(s["sparse"]) | set(s["binary"])
    return DataConfig(tasks=tasks, correlation=s["corr"], groups=_groups(s), between_correlation=s["between"], cosine=_cosine(s),
                      task_types=tuple("binary" if k in binary else "regression" for k in range(tasks)),
                      positive_rates=tuple(rates.get(k, 0.5) for k in range(tasks)), features=s["features"],
                      samples=s["samples"], holdout=s["holdout"] or HOLDOUT["synthetic"], noise=s["noise"], scale=s["scale"],
                      sinusoids=s["sinusoids"], users=s["users"], seed=s["seed"])


def _groups(s: Settings) -> tuple[int, ...] | None:
    """The group of each task: the command line's list, or the app's two halves, or None (one group)."""
    if s["task_groups"]:
        return s["task_groups"]
    tasks = s["tasks"]
    return tuple(k * 2 // tasks for k in range(tasks)) if s["groups"] and tasks > 1 else None


def _cosine(s: Settings) -> tuple[tuple[float, ...], ...] | None:
    """The command line's full K x K cosine matrix (given row after row), or None."""
    values, tasks = s["cosine"], s["tasks"]
    if not values:
        return None
    if len(values) != tasks * tasks:
        raise ConfigError(f"--cosine needs the full {tasks} x {tasks} matrix ({tasks * tasks} numbers, rows separated by ';'), "
                          f"got {len(values)} numbers.")
    return tuple(values[row * tasks:(row + 1) * tasks] for row in range(tasks))


def training_rows(s: Settings) -> int:
    """How many rows train (an own file: 80% of those it keeps, so the file must be held here)."""
    return data_config(s).samples if own_file(s) else s["samples"]


def archs(s: Settings) -> list[str]:
    """Architecture names of the race, in the order chosen."""
    return [BY_LABEL[label] for label in s["arch"]]


def entries(s: Settings) -> dict[str, tuple[str, Settings]]:
    """The race's entries, key -> (architecture, the settings it trains with): one per architecture, or, with weightings
    raced side by side (`weightings`), one per architecture and weighting, keyed "mmoe+upgrad" and trained with it."""
    if not s.get("weightings") or not KNOBS["weightings"].applies(s):
        return {arch: (arch, s) for arch in archs(s)}
    return {f"{arch}{ENTRY}{w}": (arch, {**s, "weighting": w, "weightings": ()}) for arch in archs(s) for w in s["weightings"]}


def model_config(arch: str, s: Settings, limits: bool = True) -> ModelConfig:
    """The architecture with these sizes (and its switches, e.g. HoME's)."""
    s = checked(s, limits)
    overrides = dict(experts=s["experts"], task_experts=s["task_experts"], group_experts=s["group_experts"], levels=s["levels"],
                     expert_hidden=s["expert_hidden"] or (s["hidden"],), tower_hidden=s["tower_hidden"] or (s["tower"],),
                     feature_gate_rank=s["feature_gate_rank"], l2_alpha=s["alpha"],
                     tucker_ranks=s["tucker_ranks"] or (s["rank"], s["rank"], 2), gate_temperature=s["temp"],
                     gate_dropout=s["gdrop"], gate_init_scale=s["ginit"], gate_layer_norm=s["gln"], shared_input=s["shared_in"])
    if s["activation"] != "auto":
        overrides["activation"] = s["activation"]
    overrides.update({switch.field: s[switch.knob] for switch in REGISTRY[arch].switches})
    return ModelConfig.for_arch(arch, **overrides)


def race_model_config(arch: str, s: Settings, data) -> ModelConfig:
    """The model an architecture races with on `data` (a data config of these settings): `model_config`, with the
    bottoms the registry sizes (Shared-Bottom, single-task) widened to MMoE's parameter count, the MMoE paper's
    fair comparison."""
    config = model_config(arch, s)
    return sized_model_config(config, data, "mmoe") if REGISTRY[arch].sized else config


def sweep_args(s: Settings) -> dict:
    """The arguments of `runs.sweep` for a sweep page's settings: its architectures on every chosen
    correlation and seed, with the settings' task difficulty, sizes and training."""
    s = {**s, **{name: KNOBS[name].default for name in names(["tricks"])}}   # the paper's models, as the sweep page says
    data = data_config({**s, "source": "synthetic", "tasks": 2, "groups": False, "dense": (), "sparse": ()})
    return dict(archs=[BY_LABEL[label] for label in s["sweep_arch"]], correlations=sorted(s["sweep_corr"], reverse=True),
                seeds=range(s["seed"], s["seed"] + s["seeds"]), base=data,
                train_config=train_config(s, eval_every=0, log_every=10_000),
                model_overrides=dict(experts=s["experts"], expert_hidden=(s["hidden"],), tower_hidden=(s["tower"],)))


def transfer_args(s: Settings) -> dict:
    """The arguments of `experiments.transfer` for the transfer page: the chosen architecture on the student's
    synthetic task set (its sizes from the Playground's knobs, the paper's plain training), `seeds` seeds
    from `seed` on."""
    plain = {**s, **{name: KNOBS[name].default for name in names(["tricks"])}, "source": "synthetic"}
    return dict(archs=(BY_LABEL[s["transfer_arch"]],), seeds=s["seeds"], first_seed=s["seed"], data=data_config(plain),
                train=train_config(plain, eval_every=0, log_every=10_000),
                model=dict(experts=s["experts"], expert_hidden=(s["hidden"],), tower_hidden=(s["tower"],)))


def train_config(s: Settings, limits: bool = True, **changes) -> TrainConfig:
    """The training of these settings (a weighting that does not apply, e.g. on one task, trains as equal)."""
    s = checked(s, limits)
    tasks = task_count(s)
    weighting = s["weighting"] if KNOBS["weighting"].applies(s) else "equal"
    fixed = s["task_weights"] or (s["tw"],) + (1.0,) * (tasks - 1)
    return TrainConfig(lr=s["lr"], batch_size=s["batch"], epochs=s["epochs"], steps=s["steps"] or None, device=s["device"],
                       seed=s["seed"], weighting=weighting, task_weights=fixed if weighting == "fixed" else None,
                       freeze_gates_after=s["freeze"] or None, gradnorm_alpha=s["gn_alpha"], **changes)
