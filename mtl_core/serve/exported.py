"""A kept run's trained model as a zip to download (models/export.py): the run's settings rebuild its network,
its record's weights fill it. A run recorded before it finished, or loaded from a file without weights, has none."""

from __future__ import annotations

import base64

import pandas as pd

from ..data.described import preprocessing
from ..models import build_model
from ..models import export
from ..models.registry import REGISTRY
from ..settings import builders, knobs


def has_model(record: dict) -> bool:
    return bool(record.get("weights"))


def model_zip(record: dict) -> bytes:
    """The export of a run record's model, zipped; ValueError saying why when it cannot be made."""
    from safetensors.torch import load

    if not has_model(record):
        raise ValueError("This run has no trained weights: only a run that finished in this app has them.")
    settings = {**knobs.defaults(record["settings"].get("preset", "paper")), **record["settings"]}
    data = builders.data_config(settings)
    model = build_model(builders.race_model_config(record["arch"], settings, data), data.task_names, data.task_groups,
                        data.features)
    try:
        model.load_state_dict(load(base64.b64decode(record["weights"])))
    except Exception as error:  # noqa: BLE001 - bytes from a file: any failure is "these are not its weights"
        raise ValueError(f"The run's weights do not fit its network ({type(error).__name__}).") from None
    model.eval()
    about = preprocessing(data, REGISTRY[record["arch"]].funnel)
    metrics = pd.DataFrame(record["metrics"])
    table = (metrics.pivot_table(index="task", columns="metric", values="value").to_string(float_format=lambda v: f"{v:.4f}")
             if len(metrics) else "(none recorded)")
    files = export.export(model, [o["task"] for o in about["outputs"]], [o["type"] for o in about["outputs"]], about,
                          export.readme(model, record["settings"], table))
    return export.zipped(files, folder=f"mtl-playground-{record['arch']}")
