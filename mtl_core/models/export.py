"""A trained model as plain PyTorch to take home: a readable `model.py` written from the routing plan (no
`mtl_core` import), its weights as safetensors, the preprocessing its inputs expect, and a README.

    files = export(model, task_names, task_types, about)   # {"model.py": ..., "weights.safetensors": ..., ...}
    write(files, "exported/")                               # or zipped(files) for a download

The written `model.py` has the few building blocks every architecture uses (units of MLPs, masked softmax gates,
HoME's feature gate, Tensor-Factorization's Tucker weights), then one `Model` class whose `__init__` and
`forward` are this plan's levels written out, with the shapes in comments. It computes what `MultiTaskModel` computes
in evaluation (no dropout, batch-norm running statistics), for one model (`members` = 1).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch

from .model import MultiTaskModel
from .registry import REGISTRY, label

RUNTIME = '''
import json
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {"relu": F.relu, "swish": F.silu}


class Linear(nn.Module):
    """`units` independent linear maps: x [units or 1, batch, in] -> [units, batch, out]."""

    def __init__(self, units, fan_in, fan_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(units, fan_in, fan_out))   # [units, in, out]
        self.bias = nn.Parameter(torch.zeros(units, 1, fan_out))           # [units, 1, out]

    def forward(self, x):
        return torch.matmul(x, self.weight) + self.bias


class TuckerLinear(nn.Module):
    """`units` linear maps whose weights [units, in, out] are one Tucker-factorised tensor (Yang and Hospedales,
    ICLR 2017): core [r_in, r_out, r_units] times a factor per mode."""

    def __init__(self, units, fan_in, fan_out, ranks):
        super().__init__()
        self.core = nn.Parameter(torch.zeros(*ranks))
        self.u_in = nn.Parameter(torch.zeros(fan_in, ranks[0]))
        self.u_out = nn.Parameter(torch.zeros(fan_out, ranks[1]))
        self.u_units = nn.Parameter(torch.zeros(units, ranks[2]))
        self.bias = nn.Parameter(torch.zeros(units, 1, fan_out))

    def forward(self, x):
        weight = torch.einsum("abc,ia,ob,uc->uio", self.core, self.u_in, self.u_out, self.u_units)
        return torch.matmul(x, weight) + self.bias


class Norm(nn.Module):
    """Batch normalisation per unit and feature, with the running statistics of training (HoME's expert norm)."""

    def __init__(self, units, features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(units, 1, features))
        self.bias = nn.Parameter(torch.zeros(units, 1, features))
        self.register_buffer("running_mean", torch.zeros(units, 1, features))
        self.register_buffer("running_var", torch.ones(units, 1, features))

    def forward(self, x):
        return (x - self.running_mean) / torch.sqrt(self.running_var + self.eps) * self.weight + self.bias


class MLP(nn.Module):
    """`units` MLPs of one shape, sizes (in, h1, ..., out): Linear [-> Norm] -> activation per layer (the last
    layer of a tower is a plain linear output). x [units or 1, batch, in] -> [units, batch, out]."""

    def __init__(self, units, sizes, activation="relu", norm=False, activate_last=True, tucker_ranks=None):
        super().__init__()
        pairs = list(zip(sizes[:-1], sizes[1:]))
        self.linears = nn.ModuleList(Linear(units, i, o) if tucker_ranks is None else
                                     TuckerLinear(units, i, o, [min(tucker_ranks[0], i), min(tucker_ranks[1], o),
                                                                min(tucker_ranks[2], units)]) for i, o in pairs)
        self.activated = len(pairs) if activate_last else len(pairs) - 1
        self.norms = nn.ModuleList(Norm(units, o) for o in sizes[1:self.activated + 1]) if norm else None
        self.act = ACTIVATIONS[activation]

    def forward(self, x):
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if i < self.activated:
                x = self.act(x if self.norms is None else self.norms[i](x))
        return x


class FeatureGate(nn.Module):
    """HoME's feature gate: each expert sees its own copy of the input, x * 2 sigmoid(x B C).
    x [units, batch, in] -> [units, batch, in]."""

    def __init__(self, units, features, rank):
        super().__init__()
        self.down = nn.Parameter(torch.zeros(units, features, rank))
        self.up = nn.Parameter(torch.zeros(units, rank, features))

    def forward(self, x):
        return x * 2 * torch.sigmoid(torch.matmul(torch.matmul(x, self.down), self.up))


class Gates(nn.Module):
    """The gates of one level: a masked softmax over the experts each gate may see (`mask` [gates, experts]).
    `static`: the logits are learned constants (Cross-Stitch); `layer_norm`: logits standardised over the allowed
    experts; `temperature` divides them; `own` [gates, experts] with a self-gate: a second gate over the experts
    the gate's module owns (sigmoid for one, softmax for several) whose weights are added.
    x [gates or 1, batch, in] -> weights [gates, batch, experts]."""

    def __init__(self, mask, own, features, temperature=1.0, layer_norm=False, static=False, self_gate=False):
        super().__init__()
        self.register_buffer("mask", torch.tensor(mask, dtype=torch.bool)[:, None, :], persistent=False)  # [gates, 1, experts]
        self.register_buffer("own", torch.tensor(own, dtype=torch.bool)[:, None, :], persistent=False)
        gates, experts = len(mask), len(mask[0])
        self.temperature, self.layer_norm, self.static = temperature, layer_norm, static
        learned = any(sum(row) > 1 for row in mask)   # a gate that sees one expert gives it weight 1, and learns nothing
        self.weight = nn.Parameter(torch.zeros(gates, 1 if static else features, experts)) if learned else None
        self.self_weight = nn.Parameter(torch.zeros(gates, features, experts)) if self_gate else None

    def forward(self, x):
        batch = x.shape[1]
        if self.weight is None:
            return self.mask.to(x.dtype).expand(-1, batch, -1) + self._self_weights(x)
        logits = self.weight.expand(-1, batch, -1) if self.static else torch.matmul(x, self.weight)
        if self.layer_norm:
            allowed = self.mask.to(logits.dtype)
            count = allowed.sum(-1, keepdim=True)
            mean = (logits * allowed).sum(-1, keepdim=True) / count
            variance = ((logits - mean).square() * allowed).sum(-1, keepdim=True) / count
            logits = (logits - mean) * torch.rsqrt(variance + 1e-5)
        weights = torch.softmax(logits.div(self.temperature).masked_fill(~self.mask, float("-inf")), dim=-1)
        return weights if self.self_weight is None else weights + self._self_weights(x)

    def _self_weights(self, x):
        """The self-gate's weights [gates, batch, experts] (0 without one)."""
        if self.self_weight is None:
            return 0.0
        logits = torch.matmul(x, self.self_weight)
        single = self.own.sum(-1, keepdim=True) == 1
        softmax = torch.softmax(logits.masked_fill(~self.own, float("-inf")), dim=-1).nan_to_num(0.0)
        return torch.where(single, torch.sigmoid(logits) * self.own, softmax)


def mix(weights, experts):
    """Each gate's mix of the experts: weights [gates, batch, experts], experts [experts, batch, hidden]
    -> [gates, batch, hidden]."""
    return torch.einsum("gbe,ebh->gbh", weights, experts)
'''.strip("\n")

LOADER = '''

def load(folder="."):
    """The model with its trained weights, ready to predict (evaluation mode)."""
    from safetensors.torch import load_file

    model = Model()
    model.load_state_dict(load_file(str(Path(folder) / "weights.safetensors")))
    return model.eval()


if __name__ == "__main__":   # python model.py: a prediction for one row of zeros, to see that it loads
    with torch.no_grad():
        print(dict(zip(TASKS, load(Path(__file__).parent)(torch.zeros(1, FEATURES))[0].tolist())))
'''


def _plain(array) -> list:
    return np.asarray(array).astype(int).tolist()


def _streams(index: tuple[int, ...]) -> str:
    """Python for selecting streams by index: `streams[[0, 0, 1]]` (`[units, batch, features]`)."""
    return f"streams[{list(index)}]"


def source(model: MultiTaskModel, task_names, task_types) -> str:
    """The standalone `model.py` of a model: the runtime above, then this plan's `Model`."""
    config, plan = model.config, model.plan
    arch = REGISTRY[config.arch]
    tucker = list(config.tucker_ranks) if arch.factorised else None
    lines = [f'"""{label(config.arch)}, exported from MTL Playground: plain PyTorch, no MTL Playground import.',
             "",
             "    model = load()                       # this folder's weights.safetensors",
             f"    predictions = model(x)               # x [batch, {model.features}] -> [batch, {model.tasks}]: "
             "logits for binary tasks, standardised values for regression tasks",
             "",
             "preprocessing.json says what the inputs are and how to turn predictions back into labels.",
             '"""', "", RUNTIME, "",
             f"TASKS = {list(task_names)}",
             f"TASK_TYPES = {list(task_types)}",
             f"FEATURES = {model.features}", "", "",
             "class Model(nn.Module):",
             f'    """{label(config.arch)}: {len(plan.levels)} level(s) of experts and gates, then a tower per task."""',
             "", "    def __init__(self):", "        super().__init__()"]
    width = model.features
    if config.shared_input:
        lines.append(f"        self.shared_input = MLP(1, ({width}, {config.shared_input}))   # a shared ReLU layer")
        width = config.shared_input
    forward = ["", "    def forward(self, x):",
               f'        """x [batch, {model.features}] -> predictions [batch, {model.tasks}]."""',
               f"        streams = x[None]   # [1, batch, {model.features}]: one stream, the input"]
    if config.shared_input:
        forward.append(f"        streams = self.shared_input(streams)   # [1, batch, {width}]")
    for number, (level, level_plan) in enumerate(zip(model.levels, plan.levels), start=1):
        name, hidden = f"level{number}", level_plan.hidden[-1]
        kinds = ", ".join(f"{n} ({k})" for n, k in zip(level_plan.expert_names, level_plan.expert_kinds))
        lines.append(f"        # level {number}: experts {kinds}; gates {', '.join(level_plan.gate_names)}")
        lines.append(f"        self.{name}_experts = MLP({level_plan.n_experts}, {(width, *level_plan.hidden)}, "
                     f"{config.activation!r}, norm={config.expert_norm}, tucker_ranks={tucker})")
        expert_input = _streams(level_plan.expert_stream)
        if config.feature_gate:
            lines.append(f"        self.{name}_feature_gate = FeatureGate({level_plan.n_experts}, {width}, "
                         f"{min(config.feature_gate_rank, width)})")
            expert_input = f"self.{name}_feature_gate({expert_input})"
        forward.append(f"        experts = self.{name}_experts({expert_input})   # [{level_plan.n_experts}, batch, {hidden}]")
        if level.passed_through is not None:   # every gate sees one expert: its mix is that expert's output
            forward.append(f"        streams = experts[{_plain(level_plan.mask.argmax(1))}]   # [{level_plan.n_gates}, batch, {hidden}]: "
                           "each gate passes its one expert on")
        else:
            lines.append(f"        self.{name}_gates = Gates({_plain(level_plan.mask)}, {_plain(level_plan.own)}, {width}, "
                         f"temperature={config.gate_temperature}, layer_norm={config.gate_layer_norm}, "
                         f"static={level_plan.static_gates}, self_gate={config.self_gate})")
            forward.append(f"        weights = self.{name}_gates({_streams(level_plan.gate_stream)})   "
                           f"# [{level_plan.n_gates}, batch, {level_plan.n_experts}]")
            forward.append(f"        streams = mix(weights, experts)   # [{level_plan.n_gates}, batch, {hidden}]")
        width = hidden
    lines.append(f"        self.towers = MLP({model.tasks}, {(width, *config.tower_hidden, 1)}, activate_last=False)   "
                 "# one tower per task")
    forward.append(f"        return self.towers({_streams(plan.tower_stream)})[..., 0].T   # [batch, {model.tasks}]")
    return "\n".join(lines + forward) + "\n" + LOADER


def weights(model: MultiTaskModel) -> dict[str, torch.Tensor]:
    """The model's parameters and norm statistics under `model.py`'s names, without the members dimension."""
    if model.members != 1:
        raise ValueError(f"Export one model at a time (this one stacks {model.members}).")
    renamed = {}
    for name, tensor in model.state_dict().items():
        parts = name.split(".")
        if parts[0] == "levels":
            level, block = int(parts[1]) + 1, parts[2]
            if block == "experts" and parts[3] == "mlp":
                name = f"level{level}_experts." + ".".join(parts[4:])
            elif block == "experts" and parts[3] == "feature_gate":
                name = f"level{level}_feature_gate." + ".".join(parts[4:])
            else:   # gates
                name = f"level{level}_gates." + ".".join(parts[3:])
        renamed[name] = tensor.detach().cpu()[0].contiguous()
    return renamed


def export(model: MultiTaskModel, task_names, task_types, preprocessing: dict, readme: str) -> dict[str, bytes]:
    """The files of an export: model.py, weights.safetensors, preprocessing.json, README.md."""
    from safetensors.torch import save

    return {"model.py": source(model, task_names, task_types).encode(),
            "weights.safetensors": save(weights(model)),
            "preprocessing.json": json.dumps(preprocessing, indent=1).encode(),
            "README.md": readme.encode()}


def readme(model: MultiTaskModel, settings: dict, metrics: str) -> str:
    """The export's README: what is in it, how to use it, the settings it was trained with and its test metrics."""
    return "\n".join([
        f"# {label(model.config.arch)}, exported from MTL Playground", "",
        "Plain PyTorch: `model.py` needs torch and safetensors, not MTL Playground.", "",
        "```python", "from model import load", "", "model = load()            # reads weights.safetensors from this folder",
        f"predictions = model(x)    # x: a float tensor [batch, {model.features}] -> [batch, {model.tasks}]", "```", "",
        "- `model.py`: the network, written out level by level from its routing plan (shapes in the comments)",
        "- `weights.safetensors`: the trained weights",
        "- `preprocessing.json`: what an input row is and what each output means", "",
        "`python model.py` loads it and predicts one row of zeros.", "", "## Test metrics when it was exported", "",
        "```", metrics, "```", "", "## Settings", "", "```json", json.dumps(settings, indent=1), "```", ""])


def write(files: dict[str, bytes], folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def zipped(files: dict[str, bytes], folder: str = "mtl-playground-model") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{folder}/{name}", data)
    return buffer.getvalue()
