"""A user's own file (mtl_core/data/table.py): hostile files are refused with a message that says what and where,
and change nothing; a good file becomes tasks as the README says; the command line trains on it, and its exported
model, fed rows encoded by hand from preprocessing.json, predicts what the app predicts."""

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from mtl_core.cli import main, parse, save_model, settings, train_report
from mtl_core.config import ConfigError
from mtl_core.data import census, table
from mtl_core.data.table import register, TableConfig
from mtl_core.settings import builders
from mtl_core.train.runs import train_grid

EXAMPLE = census.EXAMPLE


def shop(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows), "colour": rng.choice(["red", "green", "blue"], rows),
                          "user": rng.integers(0, 20, rows)})
    frame["bought"] = np.where(frame.a + rng.normal(size=rows) > 0, "yes", "no")
    frame["spend"] = 2 * frame.a + frame.b + rng.normal(size=rows)
    return frame


def csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


HOSTILE = {   # name -> (bytes, a phrase the message must hold)
    "formula cells": (b"a,b,c\n1,2,x\n3,4,=HYPERLINK(\"http://e.x\")\n", "spreadsheet formula"),
    "a formula after a plus": (b"a,b\n1,+cmd|' /C calc'!A0\n2,3\n", "row 2"),
    "10^6 columns": (",".join(f"c{i}" for i in range(10**6)).encode() + b"\n", "1,000,000 columns"),
    "a line too long": (b"a,b\n" + b"1," + b"9" * 150_000 + b"\n", "bytes on line 2"),
    "more bytes than allowed": (b"a,b\n" + b"1,2\n" * (table.MAX_BYTES // 4 + 1), "bytes"),
    "binary junk": (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "not a text file"),
    "mismatched quoting": (b'a,b\n1,"two\n3,4\n', "quotes"),
    "too many cells in a row": (b"a,b\n1,2\n3,4,5,6\n", "quotes"),
    "not UTF-8": ("a,b\ncafé,1\nthé,2\n".encode("latin-1"), "not UTF-8"),
    "empty": (b"", "empty"),
    "only a header": (b"a,b\n", "no rows"),
    "a column twice": (b"a,a\n1,2\n", "names a column twice"),
    "a column without a name": (b"a,,c\n1,2,3\n", "has no name"),
    "more rows than allowed": (b"a,b\n" + b"1,2\n" * (table.MAX_ROWS + 1), "rows"),
    "a damaged Parquet file": (b"PAR1" + b"\x01" * 100 + b"PAR1", "not a readable Parquet file"),
    "infinite values": (b"a,b\n1,inf\n2,3\n", "infinite"),
}


def parquet(columns: dict, **options) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer, **options)
    return buffer.getvalue()


def lying_footer(rows: int, claimed: int) -> bytes:
    """A Parquet file of `rows` rows whose footer says `claimed` (the row group still holds them all)."""
    raw = bytearray(parquet({f"c{i}": np.zeros(rows) for i in range(20)}, row_group_size=rows))
    varint = lambda n: bytes(((n >> 7 * k) & 0x7F) | (0x80 if n >> 7 * (k + 1) else 0) for k in range(max(1, (n.bit_length() + 6) // 7)))
    start = len(raw) - 8 - int.from_bytes(raw[-8:-4], "little")
    footer = bytes(raw[start:-8])
    at = footer.find(b"\x16" + varint(rows * 2))   # FileMetaData.num_rows: field 3, i64, zigzag
    small = varint(claimed * 2)
    padded = bytes(b | 0x80 for b in small) + b"\x80" * (len(varint(rows * 2)) - len(small) - 1) + b"\x00"   # same length
    raw[start + at + 1:start + at + 1 + len(padded)] = padded
    return bytes(raw)


HOSTILE.update({   # found by a review: each decoded to gigabytes, was misread or raised something else
    "a Parquet bomb: one long text repeated": (parquet({"a": ["x" * 10_000] * 200_000, "b": np.arange(200_000.0)},
                                                       compression="zstd", use_dictionary=True), "decodes to more than"),
    "Parquet cells over the bound, before decoding": (parquet({f"c{i}": np.zeros(20_000) for i in range(200)}, compression="zstd"),
                                                      "4,000,000 cells"),
    "a Parquet footer that hides rows": (lying_footer(300_000, 100), "300,000 rows"),
    "a formula as a column's name": (b'a,"=HYPERLINK(""http://e.x"")"\n1,2\n', "Column 2's name reads as a spreadsheet formula"),
    "UTF-16": ("a,b\n1,2\n".encode("utf-16"), "UTF-16"),
    "a Parquet column of bytes": (parquet({"a": [b"\xff\xfe"] * 3, "b": [1.0, 2.0, 3.0]}), "binary columns"),
    "a header too long to parse": (b"a" * 200_000 + b"\n1\n", "bytes on line 1"),
})


def test_rows_with_a_trailing_comma_and_old_mac_line_ends_read_as_they_look():
    """A trailing separator on every row once shifted every column by one (pandas took the first as an index)."""
    trailing = register(b"age,income,clicked\n30,100,yes,\n40,200,no,\n", "trailing.csv").frame
    assert trailing.age.tolist() == [30.0, 40.0] and trailing.clicked.tolist() == ["yes", "no"]
    mac = register(b"a,b\r1,2\r3,4\r", "mac.csv").frame
    assert mac.a.tolist() == [1.0, 3.0] and mac.b.tolist() == [2.0, 4.0]


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_file_is_refused_with_where_and_what_and_changes_nothing(case):
    raw, phrase = HOSTILE[case]
    before = list(table.TABLES)
    with pytest.raises(ConfigError) as refused:
        register(raw, "hostile.csv")
    message = str(refused.value)
    assert phrase in message and len(message) < 600 and "Traceback" not in message, message
    assert list(table.TABLES) == before


def test_a_parquet_file_reads_as_its_csv_does():
    frame = shop()
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    from_parquet, from_csv = register(buffer.getvalue(), "shop.parquet"), register(csv(frame), "shop.csv")
    pd.testing.assert_frame_equal(from_parquet.frame, from_csv.frame, check_dtype=False, atol=1e-12)
    assert from_parquet.digest != from_csv.digest


def test_labels_inputs_and_rows_become_tasks_as_the_readme_says(monkeypatch):
    frame = shop()
    frame.loc[[3, 7], "b"] = np.nan
    held = register(csv(frame), "shop.csv")
    kinds = held.columns().set_index("column")
    assert kinds.kind.to_dict() == {"a": "number", "b": "number", "colour": "text", "user": "number", "bought": "text", "spend": "number"}
    assert kinds.can_be["bought"] == "binary" and kinds.can_be["colour"] == "input only" and kinds.missing["b"] == 2
    assert held.detected(("bought", "spend")) == ("binary", "regression")

    config = TableConfig(held.digest, ("bought", "spend"), ("binary", "regression"), user="user")
    data = config.dataset()
    assert (len(data.train.y), len(data.validation.y), len(data.test.y)) == (478, 59, 61)   # 598 rows kept: 80/10/10
    assert config.features == 2 + 3   # a, b and colour one-hot; the user column is no input
    bought = np.concatenate([s.y[:, 0] for s in (data.train, data.validation, data.test)])
    assert set(bought) == {0.0, 1.0} and data.positive_rate[0] == pytest.approx(data.train.y[:, 0].mean())
    assert data.train.y[:, 1].mean() == pytest.approx(0, abs=1e-6) and data.train.y[:, 1].std() == pytest.approx(1, abs=1e-4)
    assert len(set(data.train.users)) == 20
    assert data.label_correlation[0, 1] > 0.3   # bought follows a, as spend does
    reseeded = TableConfig(held.digest, ("bought", "spend"), ("binary", "regression"), user="user", seed=7).dataset()
    assert np.array_equal(reseeded.test.y, data.test.y)   # the seed seeds the model, never the split
    encoded = table.encoding(config)
    assert encoded["labels"]["bought"] == {"type": "binary", "one": "yes", "zero": "no"}
    assert encoded["rows"] == {"used": 598, "dropped for a missing value": 2}

    with pytest.raises(ConfigError, match="row 5, column 'b'"):   # the CSV's line 5: its header is line 1
        TableConfig(held.digest, ("bought", "spend"), ("binary", "regression"), missing="refuse").dataset()
    with pytest.raises(ConfigError, match="has 3 distinct values; a binary label has exactly two"):
        TableConfig(held.digest, ("colour", "spend"), ("binary", "regression")).dataset()
    with pytest.raises(ConfigError, match="holds text; a regression label is a number"):
        TableConfig(held.digest, ("bought", "colour"), ("binary", "regression")).dataset()
    many = frame.assign(city=[f"city {i % 50}" for i in range(len(frame))])
    with pytest.raises(ConfigError, match="50 distinct values; text columns are one-hot encoded with at most 20"):
        TableConfig(register(csv(many), "many.csv").digest, ("bought", "spend"), ("binary", "regression")).dataset()
    monkeypatch.setattr(table, "MAX_ENCODED", 2_000)   # 598 rows x 5 inputs: over this bound (the real one: 20,000,000)
    with pytest.raises(ConfigError, match="598 rows x 5 inputs after one-hot encoding = 2,990 numbers; at most 2,000"):
        TableConfig(held.digest, ("bought", "spend"), ("binary", "regression"), inputs=("a", "b", "colour")).features
    with pytest.raises(ConfigError, match="choose from 2 to 8 label columns"):
        TableConfig(held.digest, ("bought",), ("binary",))
    with pytest.raises(ConfigError, match="not loaded here"):
        TableConfig("0" * 32, ("bought", "spend"), ("binary", "regression")).dataset()


def test_the_example_file_is_the_census_rows_it_says_and_makes_three_tasks():
    shipped = pd.read_csv(EXAMPLE)
    pd.testing.assert_frame_equal(shipped, pd.read_csv(io.StringIO(census.example_tasks().to_csv(index=False))))
    held = register(EXAMPLE.read_bytes(), EXAMPLE.name)
    labels = ("income_over_50k", "never_married", "weeks_worked")
    assert held.detected(labels) == ("binary", "binary", "regression")
    data = TableConfig(held.digest, labels, held.detected(labels)).dataset()
    assert len(data.train.y) == 3200 and data.positive_rate[0] == pytest.approx(0.09, abs=0.02)


def test_the_command_line_trains_on_an_own_file_and_its_export_predicts_rows_encoded_from_preprocessing_json(tmp_path, capsys):
    """`--data csv:PATH --labels`: AUC and GAUC per binary label (GAUC per the user column); the saved model.py, fed
    the file's test rows encoded by hand as preprocessing.json says, predicts what the trained model predicts."""
    path = tmp_path / "shop.csv"
    shop(rows=800).to_csv(path, index=False)
    args = ["train", "--arch", "mmoe", "--data", f"csv:{path}", "--labels", "bought,spend", "--user-column", "user",
            "--epochs", "2", "--device", "cpu"]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in report["tasks"]] == ["bought", "spend"]
    assert {"auc", "gauc", "logloss"} <= set(report["tasks"][0]["test"]) and "mse" in report["tasks"][1]["test"]

    s = settings(parse(args))
    data = builders.data_config(s, limits=False)
    result = train_grid([data], builders.model_config("mmoe", s, limits=False), builders.train_config(s, limits=False))
    save_model(result, train_report(result), str(tmp_path / "model"))
    about = json.loads((tmp_path / "model" / "preprocessing.json").read_text())
    frame = pd.read_csv(path)
    rows = table._split_rows(len(frame))[2]   # the test rows (no cell is missing here)
    columns = []
    for feature in about["inputs"]["features"]:
        column, _, level = feature.partition("=")
        values = frame[column].iloc[rows]
        if column in about["inputs"]["numeric"]:
            stats = about["inputs"]["numeric"][column]
            columns.append((values - stats["mean"]) / stats["std"])
        else:
            columns.append((values == level).astype(float))
    x = torch.tensor(np.stack(columns, axis=1), dtype=torch.float32)
    assert torch.allclose(x, torch.as_tensor(result.datasets[0].test.x), atol=1e-5)
    with torch.no_grad():
        torch.save((x, result.model.eval()(x)), tmp_path / "model" / "check.pt")
    from test_export import CHECK
    checked = subprocess.run([sys.executable, "-I", "-c", CHECK, str(tmp_path / "model")], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert max(json.loads(checked.stdout).values()) < 1e-4
    assert [o["output"] for o in about["outputs"]][0] == "a logit: P(bought = 'yes') = sigmoid(output)"
    assert main(["train", "--data", f"csv:{tmp_path / 'none.csv'}", "--labels", "a,b"]) == 2
    assert "there is no file" in capsys.readouterr().err
