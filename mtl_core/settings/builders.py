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
from ..models import ModelConfig
from ..models.registry import BY_LABEL, REGISTRY
from ..train.training import TrainConfig
from .knob import KnobError, Settings
from .knobs import KNOBS, funnel, names, synthetic, task_count

FUNNEL_HOLDOUT = 10_000   # funnel impressions in each of validation and test in the app
CENSUS_HOLDOUT = 10_000   # census rows in each of validation and test in the app (the experiment uses all 49,881)


def checked(s: Settings) -> Settings:
    """`s` if every knob value in it has its knob's type and range, else ConfigError."""
    for name, value in s.items():
        if name in KNOBS:
            try:
                KNOBS[name].check(value)
            except KnobError as error:
                raise ConfigError(f"{KNOBS[name].label} ({name}) {error}") from None
    return s


def data_config(s: Settings) -> DataConfig | CensusConfig | FunnelConfig:
    """The task set of these settings (ConfigError when the combination is impossible)."""
    checked(s)
    if funnel(s):
        return FunnelConfig(correlation=s["corr"], selection=s["selection"], bias=s["bias"], click_rate=s["ctr"], cvr_rate=s["cvr"],
                            samples=s["samples"], holdout=FUNNEL_HOLDOUT, seed=s["seed"])
    if not synthetic(s):
        return CensusConfig(group=int(s["source"].split(":")[1]), samples=s["samples"], holdout=CENSUS_HOLDOUT, seed=s["seed"])
    tasks = s["tasks"]
    binary = set(s["dense"]) | set(s["sparse"])
    return DataConfig(tasks=tasks, correlation=s["corr"],
                      groups=tuple(k * 2 // tasks for k in range(tasks)) if s["groups"] and tasks > 1 else None,
                      between_correlation=s["between"],
                      task_types=tuple("binary" if k in binary else "regression" for k in range(tasks)),
                      positive_rates=tuple(s["rate"] if k in s["sparse"] else 0.5 for k in range(tasks)),
                      samples=s["samples"], holdout=2_000, noise=s["noise"], scale=s["scale"], sinusoids=s["sinusoids"],
                      seed=s["seed"])


def archs(s: Settings) -> list[str]:
    """Architecture names of the race, in the order chosen."""
    return [BY_LABEL[label] for label in s["arch"]]


def model_config(arch: str, s: Settings) -> ModelConfig:
    """The architecture with these sizes (and its switches, e.g. HoME's)."""
    checked(s)
    overrides = dict(experts=s["experts"], expert_hidden=(s["hidden"],), tower_hidden=(s["tower"],), l2_alpha=s["alpha"],
                     tucker_ranks=(s["rank"], s["rank"], 2), gate_temperature=s["temp"], gate_dropout=s["gdrop"],
                     gate_init_scale=s["ginit"], gate_layer_norm=s["gln"], shared_input=s["shared_in"])
    overrides.update({switch.field: s[switch.knob] for switch in REGISTRY[arch].switches})
    return ModelConfig.for_arch(arch, **overrides)


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


def train_config(s: Settings, **changes) -> TrainConfig:
    """The training of these settings (a weighting that does not apply, e.g. on one task, trains as equal)."""
    checked(s)
    tasks = task_count(s)
    weighting = s["weighting"] if KNOBS["weighting"].applies(s) else "equal"
    return TrainConfig(lr=s["lr"], batch_size=s["batch"], epochs=s["epochs"], device=s["device"], seed=s["seed"],
                       weighting=weighting, task_weights=(s["tw"],) + (1.0,) * (tasks - 1) if weighting == "fixed" else None,
                       freeze_gates_after=s["freeze"] or None, gradnorm_alpha=s["gn_alpha"], **changes)

