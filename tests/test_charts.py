"""Chart builders: what the Playground's live loss chart promises (steady axes)."""

import pandas as pd

from mtl_core.view import charts


def history(losses):
    return pd.DataFrame([dict(arch="mmoe", task="task 0", split="train", step=10 * (i + 1), loss=v) for i, v in enumerate(losses)])


def scales(chart):
    spec = chart.to_dict()["spec"]["encoding"]
    return spec["x"]["scale"]["domain"], spec["y"]["scale"]["domain"]


def test_loss_chart_axes_span_the_run_and_whole_decades():
    x, y = scales(charts.loss_chart(history([0.8, 0.3, 0.04]), tasks=1, total_steps=1000))
    assert x == [0, 1000]
    assert y == [0.01, 1.0]


def test_loss_chart_axes_do_not_move_while_the_loss_stays_within_its_decades():
    early = scales(charts.loss_chart(history([0.8, 0.5]), tasks=1, total_steps=500))
    later = scales(charts.loss_chart(history([0.8, 0.5, 0.3, 0.15]), tasks=1, total_steps=500))
    assert early == later == ([0, 500], [0.1, 1.0])


def test_the_sweep_panels_are_headed_by_the_models_labels_in_the_registrys_order():
    runs = pd.DataFrame({"arch": ["mmoe", "shared_bottom", "omoe"] * 2, "correlation": [0.2] * 3 + [1.0] * 3, "seed": 0,
                         "loss": [0.1, 0.3, 0.2] * 2})
    spec = charts.sweep_chart(runs).to_dict()
    assert spec["facet"]["column"]["field"] == "model" and spec["facet"]["column"]["sort"] == ["Shared-Bottom", "OMoE", "MMoE"]
    assert "datum.arch == 'mmoe' ? 'MMoE'" in spec["transform"][0]["calculate"]
