"""What a model trained on a dataset expects and gives, in words and numbers a user outside this app can apply
(the preprocessing.json of an exported model, models/export.py)."""

from __future__ import annotations

from ..config import to_dict
from . import census, table


def preprocessing(config, funnel: str | None = None) -> dict:
    """For a data config (synthetic, census income, the funnel or an own file): the inputs (what x is, and for census income how a row is encoded) and each output (what a prediction
    means); `funnel`: the model's click -> conversion head (models/registry.py), whose outputs are pCTR's and
    pCVR's logits."""
    labels = {}
    if isinstance(config, census.CensusConfig):
        inputs = {"what": "a census-income row, encoded: the numeric columns standardised with the training rows' "
                          "mean and std, every categorical column one-hot ('column=value' is 1.0 or 0.0)",
                  **census.encoding(config.group)}
    elif isinstance(config, table.TableConfig):
        encoded = table.encoding(config)   # cached: read, never changed
        labels = encoded["labels"]
        inputs = {"what": "a row of your file, encoded: number columns standardised with the training rows' mean and std, "
                          "text columns one-hot ('column=value' is 1.0 or 0.0); rows with a missing value in a used column "
                          "were left out", **{k: v for k, v in encoded.items() if k != "labels"}}
    else:
        inputs = {"what": f"the generator's features x: {config.features} independent standard normal values "
                          "per row, used as they are (mtl_core/data/synthetic.py, funnel.py)"}
    outputs = []
    for name, binary in zip(config.task_names, config.is_binary):
        meaning = ("a logit: P(label = 1) = sigmoid(output)" if binary else
                   "the label standardised with the training split's mean and std (the labels are defined that way)")
        if name in labels:   # an own file's label: in its own units
            about = labels[name]
            meaning = (f"a logit: P({name} = {about['one']!r}) = sigmoid(output)" if binary else
                       f"{name} standardised: {name} = output x {about['std']:.6g} + {about['mean']:.6g}")
        outputs.append({"task": name, "type": "binary" if binary else "regression", "output": meaning})
    if funnel is not None:
        outputs[1]["output"] = "a logit of pCVR, P(conversion | click); pCTCVR = sigmoid(click) x sigmoid(conversion)"
        if funnel == "dr":
            outputs.append({"task": "imputation", "type": "regression",
                            "output": "ESCM2-DR's imputed CVR loss, softplus(output); not a prediction of a label"})
    return {"data": {"source": type(config).__name__, **to_dict(config)}, "inputs": inputs, "outputs": outputs}
