"""Command line: `python -m mtl_core train|sweep ...`. Bad arguments: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from typing import Sequence

import pandas as pd

from .config import ConfigError, to_dict
from pathlib import Path

from .data import table
from .data.synthetic import DataConfig
from .models import ARCHITECTURES
from .models.registry import REGISTRY
from .serve import classroom
from .serve.records import clean
from .settings import builders
from .settings.knob import COMMAND_LINE, OWN_FILE, Settings
from .settings.knobs import KNOBS, PRESETS, SOURCES, defaults, names
from .studies.experiments import EXPERIMENTS
from .train.device import DEVICES
from .train.runs import GridResult, sized_model_config, sweep, train_grid

EXPERIMENT_NAMES = tuple(EXPERIMENTS)


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage + message otherwise)
        raise UsageError(message)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _items(kind: type):
    """A list option's parser: items of `kind` separated by ',' (or ';', between a matrix's rows)."""
    def items(text: str) -> tuple:
        return tuple(kind(v) for v in text.replace(";", ",").split(",") if v.strip())

    items.__name__ = f"comma-separated {kind.__name__}"   # argparse names it in a bad value's message
    return items


def dest(knob: str) -> str:
    """The argparse name of a knob's option ("--batch-size" -> "batch_size")."""
    return KNOBS[knob].flag.lstrip("-").replace("-", "_")


def _knob_option(group, name: str, **changes) -> None:
    """A knob's option (settings/knobs.py): its flag, type, default, choices and help come from the table."""
    knob = KNOBS[name]
    words = (knob.help or knob.label).replace("%", "%%")
    if knob.kind is bool:
        group.add_argument(knob.flag, action=argparse.BooleanOptionalAction, default=knob.default, help=words)
    else:
        group.add_argument(knob.flag, **{"type": _items(knob.kind) if knob.sequence else knob.kind, "default": knob.default,
                                         "choices": knob.options if knob.kind is str and knob.options and not knob.sequence else None, "help": words, **changes})


OWN_FILE_PREFIXES = ("csv:", "parquet:")


def _source(text: str) -> str:
    """--data: a source of the knob table, or csv:PATH / parquet:PATH (an own file)."""
    if text.startswith(OWN_FILE_PREFIXES) or (text in SOURCES and text != "file"):
        return text
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(s for s in SOURCES if s != 'file')}, "
                                     "or csv:PATH or parquet:PATH for your own file)")


def _own_file(source: str) -> table.Table:
    """Read, check and hold an own file named by --data csv:PATH (data/table.py's limits apply here too)."""
    path = Path(source.split(":", 1)[1]).expanduser()
    if not path.is_file():
        raise ConfigError(f"--data {source}: there is no file {str(path)!r}.")
    if path.stat().st_size > table.MAX_BYTES:
        raise ConfigError(f"--data {source}: the file has {path.stat().st_size:,} bytes; at most {table.MAX_BYTES:,}.")
    return table.register(path.read_bytes(), path.name)


def _knob_options(p: argparse.ArgumentParser, title: str, names) -> None:
    group = p.add_argument_group(title)
    for name in names:
        _knob_option(group, name)


def _add_setting_args(p: argparse.ArgumentParser) -> None:
    """Every knob with a flag, in the table's sections: what trains (how a command runs or prints is its own)."""
    _knob_option(p, "preset")
    _knob_option(p, "source", type=_source, choices=None, metavar="{" + ",".join(s for s in SOURCES if s != "file") + ",csv:PATH}")
    _knob_options(p, "tasks (--data funnel: --correlation is the click's and conversion's cosine)",
                  [n for n, k in KNOBS.items() if k.section == "tasks" and k.flag and n not in ("preset", "source", "seed")])
    _knob_options(p, "model", [n for n, k in KNOBS.items() if k.section in ("models", "tricks") and k.flag])
    _knob_options(p, "training", [n for n, k in KNOBS.items() if k.section == "training" and k.flag])
    _knob_options(p, "your own file (--data csv:PATH or parquet:PATH)", [n for n in names([OWN_FILE]) if KNOBS[n].flag])
    _knob_options(p, "the command line's own (the app has no widget for them)", names([COMMAND_LINE]))


def build_parser() -> Parser:
    parser = Parser(prog="python -m mtl_core", description="MTL Playground from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train = sub.add_parser("train", help="train one architecture and print test metrics")
    train.add_argument("--arch", choices=ARCHITECTURES, default="mmoe")
    _knob_option(train, "seed")
    train.add_argument("--match-params", choices=ARCHITECTURES, help="size the bottoms of shared_bottom or single_task to this architecture's parameter count")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.add_argument("--diagnostics", action="store_true",
                       help="add what happens inside the experts (gates, sparsity, occupancy, reliance, conflict)")
    train.add_argument("--snapshot-every", type=int, help="with --diagnostics: also record them every N steps (default: at the end)")
    train.add_argument("--save", metavar="DIR", help="also write the trained model to DIR as plain PyTorch: model.py, "
                                                     "weights.safetensors, preprocessing.json, README.md")
    _add_setting_args(train)
    sw = sub.add_parser("sweep", help="the MMoE paper's study: archs x correlations x seeds")
    sw.add_argument("--archs", type=lambda t: tuple(t.split(",")), default=("shared_bottom", "omoe", "mmoe"))
    sw.add_argument("--correlations", type=_floats, default=(0.5, 0.9, 1.0))
    sw.add_argument("--seeds", type=int, default=3, help="number of seeds per (arch, correlation)")
    sw.add_argument("--first-seed", type=int, default=0, help="the seeds are S..S+N-1")
    sw.add_argument("--match-params", choices=ARCHITECTURES, default="mmoe",
                    help="the bottoms of shared_bottom and single_task are sized to this architecture's parameter count")
    out = sw.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    out.add_argument("--csv", metavar="PATH", help="write the rows to a CSV file")
    _add_setting_args(sw)
    ex = sub.add_parser("experiment", help="rerun a paper's study: " + ", ".join(EXPERIMENT_NAMES))
    ex.add_argument("name", choices=EXPERIMENT_NAMES)
    ex.add_argument("--archs", type=lambda t: tuple(t.split(",")), help="architectures (correlation, trainability, seesaw, transfer, funnel)")
    ex.add_argument("--correlations", type=_floats, help="correlations (correlation, trainability, seesaw, funnel-sparsity: CTR/CVR)")
    ex.add_argument("--seeds", type=int, help="seeds per setting")
    ex.add_argument("--biases", type=_floats, help="funnel: strengths of the hidden intent behind click and conversion, e.g. 0,1,2")
    ex.add_argument("--click-rates", type=_floats, help="funnel-sparsity: shares of impressions clicked, e.g. 0.01,0.02,0.05")
    ex.add_argument("--sizes", type=lambda t: tuple(int(v) for v in t.split(",")),
                    help="funnel-sparsity: training impressions per run, e.g. 20000,100000")
    ex.add_argument("--group", type=int, choices=(1, 2), help="census: task group 1 (income, never married) or 2 (college, never married)")
    ex.add_argument("--samples", type=int, help="training samples per run")
    ex.add_argument("--epochs", type=int)
    ex.add_argument("--lr", type=float)
    ex.add_argument("--batch-size", type=int)
    ex.add_argument("--device", choices=DEVICES)
    ex.add_argument("--jobs", type=int, default=1, help="joblib workers running grids side by side")
    out = ex.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print {runs, summary} as JSON (funnel: the list of rows)")
    out.add_argument("--csv", metavar="PATH", help="write the runs to PATH and the summary to PATH with .summary.csv")
    lessons = sub.add_parser("lessons", help="check that every lesson predicts what its race shows (default seed and other seeds)")
    lessons.add_argument("--seeds", type=int, default=10, help="other seeds to check each lesson on (0 = only the default seed)")
    lessons.add_argument("--first-seed", type=int, default=1, help="the first of the other seeds (e.g. 500 checks 500, 501, ...)")
    lessons.add_argument("--lesson", action="append", help="only this lesson (its key; repeatable)")
    lessons.add_argument("--jobs", type=int, default=1, help="lessons checked side by side (processes)")
    lessons.add_argument("--csv", metavar="PATH", help="also write the results here (the Start page shows data/lesson_check.csv)")
    lessons.add_argument("--table", action="store_true",
                         help="train nothing: print the README's lesson table from data/lesson_check.csv, data/lesson_check_500.csv "
                              "(the block from seed 500) and data/lesson_time.csv")
    bench = sub.add_parser("bench", help="speed: steps/s against a looped reference, FLOP rate, sweep speed-up")
    bench.add_argument("--device", choices=DEVICES, default="auto")
    bench.add_argument("--quick", action="store_true", help="short timings and a small sweep (a smoke test)")
    serve = sub.add_parser("serve", help="serve the app to a class: N app processes behind nginx, one store (classroom.py)")
    classroom.add_arguments(serve)
    parser.commands = sub.choices
    return parser


def settings(a: argparse.Namespace) -> Settings:
    """The knob table's settings of a command line: the preset's values, every knob's option on top (its
    default unless given), the one architecture of `train`."""
    s = {**defaults(a.preset), **{name: getattr(a, dest(name)) for name, knob in KNOBS.items()
                                  if knob.flag and hasattr(a, dest(name))}}
    if s["source"].startswith(OWN_FILE_PREFIXES):
        s.update(source="file", file=_own_file(s["source"]).digest)
    return {**s, "arch": (REGISTRY[a.arch].label,)} if "arch" in a else s


def diagnostics_report(recorder) -> dict:
    """The last snapshot's diagnostics as JSON-ready lists, plus gradient conflict over time."""
    last = lambda name: (lambda f: f[f.step == f.step.max()].drop(columns=["member", "step"]) if len(f) else f)(recorder.frame(name))
    experts = last("experts").rename(columns={"expert": "name"})
    gates = []
    for (level, gate), rows in last("gates").groupby(["level", "gate"], sort=False):
        gates.append({"level": level, "name": gate, "mean": dict(zip(rows.expert, rows["mean"])),
                      "std": dict(zip(rows.expert, rows["std"]))})
    conflict = recorder.frame("conflict")
    return {"experts": experts.to_dict(orient="records"), "gates": gates,
            "polarisation": last("polarisation").to_dict(orient="records"),
            "occupancy": last("occupancy").to_dict(orient="records"),
            "reliance": last("reliance").to_dict(orient="records"),
            "conflict": conflict.drop(columns="member").to_dict(orient="records") if len(conflict) else [],
            "snapshots": int(recorder.frame("gates").step.nunique()), "seconds": recorder.seconds}


def train_report(result: GridResult) -> dict:
    dataset = result.datasets[0]
    test = result.metrics[result.metrics["split"] == "test"]
    tasks = []
    for name, binary in zip(dataset.config.task_names, dataset.config.is_binary):
        rows = test[test["task"] == name]
        tasks.append({"name": name, "type": "binary" if binary else "regression",
                      "test": dict(zip(rows["metric"], rows["value"]))})
    extra = {"diagnostics": diagnostics_report(result.diagnostics)} if result.diagnostics is not None else {}
    return clean({
        **extra,
        "arch": result.model_config.arch, "params": result.params, "seconds": result.seconds, "device": result.device,
        "label_correlation": dataset.label_correlation, "target_cosine": dataset.target_cosine, "tasks": tasks,
        "diverged": [d.message for d in result.diverged],
        "config": {"data": to_dict(dataset.config), "model": to_dict(result.model_config)},
    })


def _print_train(report: dict) -> None:
    print(f"{report['arch']}: {report['params']:,} parameters, {report['seconds']:.1f} s on {report['device']}")
    print("label correlation (measured, train):")
    for row in report["label_correlation"]:
        print("  " + "  ".join(f"{v:+.3f}" for v in row))
    table = pd.DataFrame([{"task": t["name"], "type": t["type"], **t["test"]} for t in report["tasks"]])
    print("test metrics:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for message in report["diverged"]:
        print(message)


def _print_diagnostics(d: dict) -> None:
    print("experts (last snapshot):")
    print(pd.DataFrame(d["experts"])[["level", "name", "kind", "zero_fraction", "near_zero_fraction", "mean", "std"]]
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("gates (mean weight per visible expert):")
    for gate in d["gates"]:
        print(f"  level {gate['level']} {gate['name']}: " + ", ".join(f"{e} {w:.2f}" for e, w in gate["mean"].items()))
    if d["conflict"]:
        last = pd.DataFrame(d["conflict"]).groupby(["task_a", "task_b"]).cosine.last()
        print("gradient conflict on shared experts (cosine, last snapshot):")
        print("  " + ", ".join(f"{a} / {b}: {c:+.2f}" for (a, b), c in last.items()))


def run_train(a: argparse.Namespace) -> int:
    s = settings(a)
    data = builders.data_config(s, limits=False)
    model = sized_model_config(builders.model_config(a.arch, s, limits=False), data, a.match_params)
    train = builders.train_config(s, limits=False, snapshot_every=a.snapshot_every)
    result = train_grid([data], model, train, diagnostics=a.diagnostics)
    report = train_report(result)
    if a.save:
        save_model(result, report, a.save)
    if a.json:
        print(json.dumps(report))
        return 1 if report["diverged"] else 0
    _print_train(report)
    if a.diagnostics:
        _print_diagnostics(report["diagnostics"])
    return 1 if report["diverged"] else 0


def save_model(result: GridResult, report: dict, folder: str) -> None:
    """The trained model as plain PyTorch in `folder` (models/export.py); a note on stderr says where."""
    from .data.described import preprocessing
    from .models import export

    dataset, model = result.datasets[0], result.model
    about = preprocessing(dataset.config, REGISTRY[model.config.arch].funnel)
    names = [output["task"] for output in about["outputs"]]
    types = [output["type"] for output in about["outputs"]]
    table = pd.DataFrame([{"task": t["name"], **t["test"]} for t in report["tasks"]]).to_string(index=False)
    files = export.export(model, names, types, about, export.readme(model, report["config"], table))
    print(f"saved the model to {export.write(files, folder)}/ (model.py, weights.safetensors, preprocessing.json, README.md)",
          file=sys.stderr)


def run_sweep(a: argparse.Namespace) -> int:
    if a.seeds < 1:
        raise ConfigError(f"--seeds is a number of seeds, at least 1, got {a.seeds}.")
    bad = [arch for arch in a.archs if arch not in ARCHITECTURES]
    if bad:
        raise ConfigError(f"Unknown architecture(s): {', '.join(bad)}. Choose from: {', '.join(ARCHITECTURES)}.")
    s = settings(a)
    base = builders.data_config(s, limits=False)
    if not isinstance(base, DataConfig):
        raise ConfigError("sweep varies the correlation of synthetic tasks; for census income use "
                          "`python -m mtl_core experiment census --group 1` (or `train --data census-income:1`), for the "
                          "funnel `python -m mtl_core experiment funnel`.")
    model_overrides = {k: v for k, v in vars(builders.model_config("mmoe", s, limits=False)).items() if k in (
        "experts", "task_experts", "group_experts", "levels", "expert_hidden", "tower_hidden", "gate_temperature",
        "gate_dropout", "gate_init_scale", "gate_layer_norm", "shared_input", "feature_gate_rank")}
    if a.first_seed < 0:
        raise ConfigError(f"--first-seed is a seed, 0 or more, got {a.first_seed}.")
    rows = sweep(a.archs, a.correlations, range(a.first_seed, a.first_seed + a.seeds), base, builders.train_config(s, limits=False, eval_every=0), model_overrides, a.match_params,
                 on_result=lambda arch, r: print(f"{arch}: {len(r.datasets)} runs in {r.seconds:.1f} s", file=sys.stderr))
    rows = rows[rows["split"] == "test"].drop(columns="split")
    if a.json:
        print(json.dumps(clean(rows.to_dict(orient="records"))))
    elif a.csv:
        rows.to_csv(a.csv, index=False)
        print(f"wrote {len(rows)} rows to {a.csv}")
    else:
        summary = rows.groupby(["arch", "correlation", "task", "metric"])["value"].agg(["mean", "std", "count"]).reset_index()
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def run_experiment(a: argparse.Namespace) -> int:
    import inspect

    function = EXPERIMENTS[a.name]
    parameters = inspect.signature(function).parameters
    kwargs = {"n_jobs": a.jobs}
    for name in ("archs", "correlations", "seeds", "group", "biases", "click_rates", "sizes"):
        value = getattr(a, name)
        if value is not None:
            if name not in parameters:
                raise ConfigError(f"--{name.replace('_', '-')} does not apply to the {a.name} experiment.")
            kwargs[name] = value
    bad = [arch for arch in kwargs.get("archs", ()) if arch not in ARCHITECTURES]
    if bad:
        raise ConfigError(f"Unknown architecture(s): {', '.join(bad)}. Choose from: {', '.join(ARCHITECTURES)}.")
    if kwargs.get("seeds", 1) < 1:
        raise ConfigError(f"--seeds is a number of seeds, at least 1, got {kwargs['seeds']}.")
    changes = {k: getattr(a, k) for k in ("epochs", "lr", "batch_size", "device") if getattr(a, k) is not None}
    if "data" not in parameters:   # a study of lessons' settings: the lessons fix its data and training
        given = [f"--{k.replace('_', '-')}" for k in ("samples", *changes) if getattr(a, k) is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} do(es) not apply to the {a.name} experiment: it fixes them (its lessons' settings, or its own).")
    else:
        data = parameters["data"].default
        kwargs["data"] = replace(data, samples=a.samples) if a.samples else data
        kwargs["train"] = replace(parameters["train"].default, **changes)
    study = function(**kwargs)
    if a.json and a.name.startswith("funnel"):   # the funnel's rows as one list (model, bias, seed, space, metric, value)
        print(json.dumps(clean(study.runs.to_dict(orient="records"))))
    elif a.json:
        print(json.dumps({"runs": clean(study.runs.to_dict(orient="records")),
                          "summary": clean(study.summary.to_dict(orient="records"))}))
    elif a.csv:
        study.runs.to_csv(a.csv, index=False)
        study.summary.to_csv(a.csv.removesuffix(".csv") + ".summary.csv", index=False)
        print(f"wrote {len(study.runs)} runs to {a.csv} and the summary beside it")
    else:
        print(study.summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def lesson_table() -> str:
    """The README's lesson table (markdown), from the bundled lesson checks and lesson timings."""
    from .studies import lessons
    from .studies.bundled import DATA

    first, later = (pd.read_csv(DATA / name).set_index("lesson") for name in ("lesson_check.csv", "lesson_check_500.csv"))
    timed = pd.read_csv(DATA / "lesson_time.csv").set_index("lesson")
    lines = ["| lesson | question | default seed | seeds 1-10 | seeds 500-509 | margin (median), Wilcoxon p | training alone, s | "
             "in the app: first chart, whole race, s |", "|---|---|---|---|---|---|---|---|"]
    for lesson in lessons.LESSONS:
        row, block = first.loc[lesson.key], later.loc[lesson.key] if lesson.key in later.index else None
        app = f"{timed.first_chart_seconds[lesson.key]}, {timed.app_seconds[lesson.key]}" if lesson.key in timed.index else ""
        lines.append(f"| {lesson.key} | {lesson.question} | {'held' if row.default_held else 'NOT held'} | {row.held}/{row.seeds} | "
                     + (f"{block.held}/{block.seeds}" if block is not None else "not run") + f" | {row.margin:+.3g}, {row.p:.2g} | "
                     f"{row.seconds} | {app} |")
    return "\n".join(lines)


def run_lessons(a: argparse.Namespace) -> int:
    """Play every lesson and say whether its prediction held; exit 1 if a lesson would not ship."""
    from joblib import Parallel, delayed

    from .studies import claims, evidence, lessons

    if a.table:
        print(lesson_table())
        return 0

    import torch

    torch.set_num_threads(1)  # as a worker of the app trains (and the seconds are the app's)
    chosen = [lessons.lesson(key) for key in a.lesson] if a.lesson else list(lessons.LESSONS)
    if a.seeds < 0:
        raise ConfigError(f"--seeds is a number of other seeds, 0 or more, got {a.seeds}.")
    if a.first_seed < 1:
        raise ConfigError(f"--first-seed is the first of the other seeds, 1 or more (0 is the default seed), got {a.first_seed}.")
    results = Parallel(n_jobs=a.jobs)(delayed(lessons.check)(lesson, a.seeds, None, a.first_seed) for lesson in chosen)
    if a.csv:
        pd.DataFrame([dict(lesson=r.lesson.key, default_held=r.default.held, held=sum(v.held for v in r.seeds), seeds=len(r.seeds),
                           ships=r.ships, seconds=round(r.seconds, 1), date=time.strftime("%Y-%m-%d"), evidence=r.default.evidence,
                           margin=r.effect.quantile(0.5), margin_q1=r.effect.quantile(0.25), margin_q3=r.effect.quantile(0.75),
                           margin_unit=r.effect.unit, p=r.effect.p)
                      for r in results]).to_csv(a.csv, index=False)
    print(f"{'lesson':<14} {'default seed':<13} {'other seeds':<12} {'ships':<6} {'seconds':>8}  evidence (default seed)")
    for r in results:
        share = f"{sum(v.held for v in r.seeds)}/{len(r.seeds)} ({r.share:.0%})" if r.seeds else "-"
        print(f"{r.lesson.key:<14} {'held' if r.default.held else 'NOT held':<13} {share:<12} {'yes' if r.ships else 'NO':<6} "
              f"{r.seconds:>8.1f}  {r.default.evidence}")
        print(f"{'':<14} margin over the default and other seeds: {r.effect}")
    verdicts = {c.key: c.verdict() for c in claims.CLAIMS}
    print(f"\nA lesson ships if it held on the default seed, on {lessons.SHIP_SHARE:.0%} of the other seeds, and its margins "
          f"are beyond chance (one-sided Wilcoxon signed-rank, p < {evidence.ALPHA}; mtl_core/studies/evidence.py).")
    print(f"\n{'claim':<22} {'on its study':<13} evidence (mtl_core/studies/claims.py: the bundled studies against their controls)")
    for key, v in verdicts.items():
        print(f"{key:<22} {'held' if v.held else 'NOT held':<13} {v.evidence}")
    return 0 if all(r.ships for r in results) and all(v.held for v in verdicts.values()) else 1


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; a `--preset` becomes the defaults of the options it sets (given options win)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = PRESETS.get(getattr(args, "preset", "paper"), {})
    if preset:   # the preset's knobs with a flag (the others come with the preset's defaults, `settings`)
        parser.commands[args.command].set_defaults(**{dest(name): value for name, value in preset.items() if KNOBS[name].flag})
        args = parser.parse_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(argv)
        if args.command == "bench":
            from .studies.bench import run_bench
            run_bench(args.device, args.quick)
            return 0
        return {"train": run_train, "sweep": run_sweep, "experiment": run_experiment, "lessons": run_lessons,
                "serve": classroom.serve}[args.command](args)
    except (UsageError, ConfigError) as error:
        print(f"mtl_core: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:   # the reader went away (`... | head`): what it wanted was printed
        sys.stdout = None
        return 0
