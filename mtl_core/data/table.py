"""A user's own tasks: a CSV or Parquet file with several label columns, checked whole before anything reads it.

    table = register(raw, "shop.csv")           # -> Table (checked, kept in this process by its digest), or ConfigError
    table.columns()                             # per column: kind, distinct values, missing cells, task type it can be
    config = TableConfig(table.digest, labels=("clicked", "spend"), task_types=("binary", "regression"))
    dataset = config.dataset()                  # the Dataset contract of every source (synthetic.py)

What a file may be (the README's table): at most `MAX_BYTES` bytes, `MAX_ROWS` rows, `MAX_COLUMNS` columns,
`MAX_CELLS` cells, `MAX_LINE` characters on one line, column names of at most `MAX_NAME` characters. A CSV file is
UTF-8 text (a byte-order mark is allowed); a cell that is text starting with = + - or @ reads as a spreadsheet
formula and refuses the file (spreadsheets run them when the file is opened again); NUL bytes, another
encoding, quotes that do not close and rows with too many cells refuse it too, each with a message that says where.

How a table becomes a task set: each label is a task, regression (a number column, standardised with the
training rows' mean and std, as the synthetic labels are) or binary (exactly two distinct values; the larger
number, or the later text in sorted order, is 1). Inputs: number columns standardised with the training rows'
statistics, other columns one-hot over their values (at most `MAX_LEVELS` each, else refused: leave the column
out or bin it). Rows with a missing value in a used column are dropped or refuse the file, as the user chose.
An optional user column groups rows for GAUC (else every row is one user, and GAUC equals AUC). The rows are
split 80/10/10 into train, validation and test by a fixed shuffle (seed 0), so the split never moves with
the model's seed.

The checked table lives in this process (`TABLES`, a few at most, by digest); nothing is written to disk here.
A worker process gets the file's bytes with the race that trains on it (live/race.py) and registers them the
same way; the app keeps the file in the browser's own locker of the store (serve/store.py).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..config import check, ConfigError
from .synthetic import Dataset, pearson, Split, TASK_TYPES

MAX_BYTES = 20_000_000
MAX_ROWS = 200_000
MAX_COLUMNS = 200
MAX_CELLS = 2_000_000   # a text cell held costs about 60 bytes: 120 MB at most
MAX_LINE = 100_000
MAX_NAME = 40
MAX_LEVELS = 20
MAX_INPUTS = 1_000     # input features after one-hot encoding
MAX_ENCODED = 20_000_000   # rows x encoded inputs: 80 MB of float32 in a worker
MAX_DECODED = 200_000_000  # bytes a Parquet file may decode to (its text cells included)
MIN_ROWS = 100         # rows left to train on (10 each for validation and test)
MAX_LABELS = 8
FORMULA = re.compile(r"^\s*[=+\-@]")
MISSING = ("drop", "refuse")
SPLIT = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Table:
    """A checked file: its name, digest (the first 32 hex digits of its sha256) and cells. `frame`'s columns are
    float64 (numbers) or object (text), NaN where a cell is missing."""

    name: str
    digest: str
    frame: pd.DataFrame

    @property
    def size(self) -> int:
        """Bytes the cells take in memory."""
        return int(self.frame.memory_usage(deep=True).sum())

    def columns(self) -> pd.DataFrame:
        """One row per column: column, kind ("number" or "text"), distinct (values), missing (cells), can_be
        ("binary", "regression" or "input only": the task types the column can be a label of)."""
        rows = []
        for name in self.frame.columns:
            values = self.frame[name]
            distinct = int(values.nunique(dropna=True))
            number = values.dtype.kind == "f"
            can_be = "binary" if distinct == 2 else "regression" if number and distinct > 2 else "input only"
            rows.append((name, "number" if number else "text", distinct, int(values.isna().sum()), can_be))
        return pd.DataFrame(rows, columns=["column", "kind", "distinct", "missing", "can_be"])


    def detected(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        """The task type of each label column as detected: binary for two distinct values, else regression."""
        missing = [c for c in labels if c not in self.frame.columns]
        check(not missing, f"{self.name!r} has no column {', '.join(map(repr, missing[:5]))}.")
        return tuple("binary" if self.frame[c].nunique(dropna=True) == 2 else "regression" for c in labels)


def read_table(raw: bytes, name: str) -> Table:
    """Check a whole file and read it; ConfigError says what was wrong (and where) and what is allowed."""
    check(len(raw) <= MAX_BYTES, f"{_named(name)} is {len(raw):,} bytes; a file may have at most {MAX_BYTES:,} bytes.")
    check(len(raw) > 0, f"{_named(name)} is empty.")
    frame = _parquet(raw, name) if raw[:4] == b"PAR1" else _csv(raw, name)
    check(len(frame) > 0 and len(frame.columns) > 0,
          f"{_named(name)} has no rows: the first row names the columns, the others hold values.")
    names = [str(c).strip() for c in frame.columns]
    for number, column in enumerate(names, 1):
        check(column and not column.startswith("Unnamed:"), f"Column {number} of {_named(name)} has no name: the first row names the columns.")
        check(len(column) <= MAX_NAME, f"Column {number}'s name ({column[:MAX_NAME]}...) is longer than {MAX_NAME} characters; rename it.")
        check(not FORMULA.match(column), f"Column {number}'s name reads as a spreadsheet formula (it starts with = + - or @); rename it.")
    repeated = sorted({c for c in names if names.count(c) > 1})
    check(not repeated, f"{_named(name)} names a column twice: {', '.join(repeated[:5])}. Every column needs its own name.")
    frame.columns = names
    return Table(name, hashlib.sha256(raw).hexdigest()[:32], _typed(frame, name))


def _named(name: str) -> str:
    return f"The file {str(name)[:60]!r}"


def _cells(name: str, rows: int, columns: int) -> None:
    check(rows <= MAX_ROWS, f"{_named(name)} has {rows:,} rows; a file may have at most {MAX_ROWS:,}.")
    check(columns <= MAX_COLUMNS, f"{_named(name)} has {columns:,} columns; a file may have at most {MAX_COLUMNS}.")
    check(rows * columns <= MAX_CELLS, f"{_named(name)} has {rows:,} rows x {columns:,} columns = {rows * columns:,} cells; "
                                       f"a file may have at most {MAX_CELLS:,} cells.")


def _csv(raw: bytes, name: str) -> pd.DataFrame:
    """A CSV file's cells as text, after the checks that need no parsing (sizes come from where its newlines are)."""
    check(raw[:2] not in (b"\xff\xfe", b"\xfe\xff"), f"{_named(name)} is UTF-16 text; save it as UTF-8 (in a spreadsheet: 'CSV UTF-8').")
    zero = raw.find(b"\x00")
    check(zero < 0, f"{_named(name)} is not a text file (a NUL byte at byte {zero:,}): upload a CSV file (text, UTF-8) "
                    "or a Parquet file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ConfigError(f"{_named(name)} is not UTF-8 text: byte 0x{raw[error.start]:02x} on line {line:,} is not UTF-8. "
                          "Save it as UTF-8 (in a spreadsheet: 'CSV UTF-8').") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")   # Windows and old Mac line ends
    commas = text[:text.find("\n") % (len(text) + 1)].count(",")   # the first row's separators: no parsing yet
    check(commas < MAX_COLUMNS, f"{_named(name)} has {commas + 1:,} columns; a file may have at most {MAX_COLUMNS}.")
    ends = np.flatnonzero(np.frombuffer(text.encode(), np.uint8) == 10)   # byte offsets of the newlines
    lengths = np.diff(np.concatenate([[-1], ends, [len(text.encode())]])) - 1
    line = int(np.argmax(lengths))
    check(lengths[line] <= MAX_LINE, f"{_named(name)} has {int(lengths[line]):,} bytes on line {line + 1:,}; a line may have "
                                     f"at most {MAX_LINE:,}.")
    try:
        header = [c.strip() for c in next(csv.reader([text.split("\n", 1)[0]]), [])]
    except csv.Error as error:
        raise ConfigError(f"{_named(name)}'s first row could not be read as CSV ({error}).") from None
    _cells(name, int((lengths[1:] > 0).sum()), len(header))   # rows that are not empty, before any is parsed
    repeated = sorted({c for c in header if header.count(c) > 1 and c})
    check(not repeated, f"{_named(name)} names a column twice: {', '.join(repeated[:5])}. Every column needs its own name.")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, on_bad_lines="error", engine="c", skipinitialspace=True,
                            index_col=False)   # never a row's first cell as an index (a trailing comma made that happen)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{_named(name)} has no rows: the first row names the columns, the others hold values.") from None
    except (pd.errors.ParserError, ValueError) as error:
        raise ConfigError(f"{_named(name)} could not be read as CSV ({str(error).strip()[:200]}). Check its quotes: "
                          "a quoted cell must end with a quote, and every row needs as many cells as the first.") from None
    return frame


def _parquet(raw: bytes, name: str) -> pd.DataFrame:
    """A Parquet file's columns, decoded a batch at a time: its rows are counted from the row groups (the footer's total
    can lie), and the decoded bytes and each text cell's length are bounded as they are decoded (a small file can
    decompress to gigabytes)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    try:
        file = pq.ParquetFile(pa.BufferReader(raw))
        meta, schema = file.metadata, file.schema_arrow
        _cells(name, sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups)), len(schema))
        odd = [f.name for f in schema if pa.types.is_nested(f.type) or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        check(not odd, f"{_named(name)} has nested or binary columns ({', '.join(odd[:5])}); only flat columns of numbers or text can be read.")
        stored = sum(meta.row_group(i).column(j).total_uncompressed_size for i in range(meta.num_row_groups) for j in range(meta.num_columns))
        check(stored <= MAX_DECODED, f"{_named(name)} holds {stored:,} bytes uncompressed; at most {MAX_DECODED:,}.")
        batches, rows, decoded = [], 0, 0
        for batch in file.iter_batches(batch_size=1_000):
            rows, decoded = rows + batch.num_rows, decoded + batch.nbytes
            _cells(name, rows, batch.num_columns)
            check(decoded <= MAX_DECODED, f"{_named(name)} decodes to more than {MAX_DECODED:,} bytes; at most {MAX_DECODED:,}.")
            for field, values in zip(batch.schema, batch.columns):
                if pa.types.is_dictionary(field.type):
                    values = values.cast(field.type.value_type)
                if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
                    longest = pc.max(pc.utf8_length(values)).as_py() or 0
                    check(longest <= MAX_LINE, f"{_named(name)}, column {field.name[:40]!r}: a text cell of {longest:,} characters; "
                                               f"at most {MAX_LINE:,}.")
            batches.append(batch)
        frame = pa.Table.from_batches(batches, schema=schema).to_pandas(ignore_metadata=True)
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise ConfigError(f"{_named(name)} is not a readable Parquet file ({type(error).__name__}).") from None
    return frame


def _typed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Number columns as float64, the others as text; a text cell that reads as a spreadsheet formula refuses the file."""
    columns = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind in "biuf":
            columns[column] = values.astype(np.float64)
            continue
        text = values.where(values.isna(), values.astype(str).str.strip())
        text = text.mask(text == "")
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().sum() == text.notna().sum():
            columns[column] = numbers.astype(np.float64)
            continue
        formula = text.notna() & text.str.match(FORMULA, na=False) & numbers.isna()
        if formula.any():
            row = int(np.flatnonzero(formula.to_numpy())[0])
            raise ConfigError(f"{_named(name)}, column {column!r}, row {row + 2:,}: the cell {str(text.iloc[row])[:30]!r} reads as a "
                              "spreadsheet formula (text starting with = + - or @). Formulas are refused: a spreadsheet would "
                              "run them when the file is opened again. Remove them or put the value itself.")
        columns[column] = text.astype(object)
    finite = [c for c, v in columns.items() if v.dtype.kind == "f" and np.isinf(v.to_numpy()).any()]
    check(not finite, f"{_named(name)}, column {finite[:1]}: infinite values cannot be trained on; leave them empty instead.")
    return pd.DataFrame(columns)


# ---------------------------------------------------------------- the tables this process holds

TABLES: OrderedDict[str, tuple[Table, int]] = OrderedDict()   # digest -> (table, its size), least recently held first
KEPT_BYTES = 600_000_000   # the tables a process holds, all together (the newest is always held)
_LOCK = threading.Lock()


def register(raw: bytes, name: str) -> Table:
    """Check a file (read_table) and hold it in this process under its digest."""
    return hold(read_table(raw, name))


def hold(table: Table) -> Table:
    """Hold a checked table in this process (a worker gets it so from the page); the least recently held go beyond
    KEPT_BYTES."""
    size = table.size
    with _LOCK:
        TABLES[table.digest] = (table, size)
        TABLES.move_to_end(table.digest)
        while sum(kept for _, kept in TABLES.values()) > KEPT_BYTES and len(TABLES) > 1:
            TABLES.popitem(last=False)
    return table


def holding(digest: str) -> Table | None:
    """The table held under `digest`, or None."""
    with _LOCK:
        kept = TABLES.get(digest)
        if kept is not None:
            TABLES.move_to_end(digest)
    return kept[0] if kept else None


def held(digest: str) -> Table:
    table = holding(digest)
    check(table is not None, "The file these settings train on is not loaded here: upload it on the Data page (your "
                             "own files stay in your browser's locker; links and run files do not carry them).")
    return table


# ---------------------------------------------------------------- a table as a task set

@dataclass(frozen=True)
class TableConfig:
    """A user's table as a data source; the fields the trainers read mirror `DataConfig`'s. `inputs` empty: every
    column that is no label and not the user column. `seed` seeds the model and the batch order, never the rows."""

    file: str
    labels: tuple[str, ...]
    task_types: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    user: str = ""
    missing: str = "drop"
    seed: int = 0

    funnel = False

    def __post_init__(self):
        k = len(self.labels)
        check(2 <= k <= MAX_LABELS, f"choose from 2 to {MAX_LABELS} label columns (each is a task), got {k}.")
        check(len(set(self.labels)) == k, f"a label column is chosen twice: {self.labels}.")
        check(len(self.task_types) == k, f"give one task type per label ({k}), got {len(self.task_types)}: {self.task_types}.")
        bad = [t for t in self.task_types if t not in TASK_TYPES]
        check(not bad, f"Unknown task type(s) {bad}: each label is 'regression' or 'binary'.")
        check(self.missing in MISSING, f"missing is one of {', '.join(MISSING)}, got {self.missing!r}.")
        both = sorted(set(self.inputs) & set(self.labels))
        check(not both, f"{', '.join(both)} cannot be a label and an input at once.")
        check(self.user not in self.labels and self.user not in self.inputs,
              f"the user column {self.user!r} cannot also be a label or an input.")

    @property
    def tasks(self) -> int:
        return len(self.labels)

    @property
    def task_names(self) -> tuple[str, ...]:
        return self.labels

    @property
    def task_groups(self) -> tuple[int, ...]:
        return (0,) * self.tasks

    @property
    def is_binary(self) -> tuple[bool, ...]:
        return tuple(t == "binary" for t in self.task_types)

    @property
    def features(self) -> int:
        return len(encoding(self)["features"])

    @property
    def samples(self) -> int:
        """Training rows (80% of the rows kept)."""
        return _split_sizes(encoding(self)["rows"]["used"])[0]

    @property
    def holdout(self) -> int:
        """Validation rows (test has the rest: about as many)."""
        return _split_sizes(encoding(self)["rows"]["used"])[1]

    def dataset(self) -> Dataset:
        return load(self)


def input_columns(config: TableConfig, table: Table) -> tuple[str, ...]:
    """The columns the model reads: the chosen ones, or every column that is no label and not the user column."""
    inputs = config.inputs or tuple(c for c in table.frame.columns if c not in config.labels and c != config.user)
    missing = [c for c in (*config.labels, *inputs, *([config.user] if config.user else [])) if c not in table.frame.columns]
    check(not missing, f"{table.name!r} has no column {', '.join(map(repr, missing[:5]))}.")
    check(inputs, "choose at least one input column (a column that is not a label).")
    return inputs


def load(config: TableConfig) -> Dataset:
    """The task set of `config` (its table must be held in this process); cached, so the models of a race share it."""
    return replace(_load(replace(config, seed=0)), config=config)


def encoding(config: TableConfig) -> dict:
    """How a row becomes the model's input and labels (the preprocessing of an exported model): the feature
    names in order, each number input's and regression label's training mean and std, each text input's values,
    each binary label's value that is 1, and the rows used. Cheap: no input matrix is built."""
    return _prepared(replace(config, seed=0))[2]


def labels(config: TableConfig) -> Dataset:
    """The task set without its inputs (x has no columns): what the Data page shows, in the page's own process."""
    frame, y, about = _prepared(replace(config, seed=0))
    return _dataset(config, np.zeros((len(y), 0), np.float32), y, _users(config, frame))


@functools.lru_cache(maxsize=4)
def _load(config: TableConfig) -> Dataset:
    frame, y, about = _prepared(config)
    parts = []
    for column in input_columns(config, held(config.file)):
        values = frame[column]
        if column in about["numeric"]:
            stats = about["numeric"][column]
            parts.append(((values - stats["mean"]) / stats["std"]).to_numpy(np.float32)[:, None])
        else:
            levels = np.array(about["categories"][column], dtype=object)
            parts.append((values.astype(str).to_numpy()[:, None] == levels[None, :]).astype(np.float32))
    return _dataset(config, np.concatenate(parts, axis=1), y, _users(config, frame))


def _users(config: TableConfig, frame: pd.DataFrame) -> np.ndarray:
    """Each row's user `[rows]` (the user column's values numbered; every row user 0 without one)."""
    return (pd.factorize(frame[config.user].astype(str))[0] if config.user else np.zeros(len(frame))).astype(np.int64)


def _dataset(config: TableConfig, x: np.ndarray, y: np.ndarray, users: np.ndarray) -> Dataset:
    """x `[rows, features]`, y `[rows, tasks]`, users `[rows]` cut into the fixed splits."""
    def split(rows: np.ndarray) -> Split:
        return Split(x[rows], y[rows], users[rows])

    train, validation, test = (split(rows) for rows in _split_rows(len(y)))
    return Dataset(config=config, train=train, validation=validation, test=test, weights=None, target_cosine=None,
                   realised_cosine=None, label_correlation=pearson(train.y),
                   positive_rate=np.where(config.is_binary, train.y.mean(0), np.nan))


def _split_sizes(rows: int) -> tuple[int, int, int]:
    train, validation = int(rows * SPLIT[0]), int(rows * SPLIT[1])
    return train, validation, rows - train - validation


def _split_rows(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row numbers of train, validation and test: a fixed shuffle (seed 0), cut 80/10/10."""
    order = np.random.default_rng(0).permutation(rows)
    train, validation, _ = _split_sizes(rows)
    return np.sort(order[:train]), np.sort(order[train:train + validation]), np.sort(order[train + validation:])


@functools.lru_cache(maxsize=4)
def _prepared(config: TableConfig) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """(the rows used, with the chosen columns; y `[rows, tasks]` float32; the encoding in words)."""
    table = held(config.file)
    inputs = input_columns(config, table)
    used = [*config.labels, *inputs, *([config.user] if config.user else [])]
    frame = table.frame[used]
    gaps = frame.isna().any(axis=1).to_numpy()
    if gaps.any() and config.missing == "refuse":
        row = int(np.flatnonzero(gaps)[0])
        column = frame.columns[frame.iloc[row].isna().to_numpy()][0]
        raise ConfigError(f"{int(gaps.sum()):,} rows have a missing value in a chosen column (the first: row {row + 2:,}, "
                          f"column {column!r}). Drop those rows, or fill the cells and upload the file again.")
    frame = frame[~gaps]
    check(len(frame) >= MIN_ROWS, f"{len(frame):,} rows are left{' after dropping those with a missing value' if gaps.any() else ''}; "
                                  f"training needs at least {MIN_ROWS}.")
    train = np.zeros(len(frame), bool)
    train[_split_rows(len(frame))[0]] = True
    y, described = [], {}
    for column, kind in zip(config.labels, config.task_types):
        values = frame[column]
        if kind == "binary":
            levels = sorted(values.unique())
            check(len(levels) == 2, f"the label {column!r} has {len(levels)} distinct values; a binary label has exactly two "
                                    "(choose regression for a number).")
            y.append((values == levels[1]).to_numpy(np.float32))
            described[column] = {"type": "binary", "one": _plain(levels[1]), "zero": _plain(levels[0])}
        else:
            check(values.dtype.kind == "f", f"the label {column!r} holds text; a regression label is a number (choose binary "
                                            "for a column of two values).")
            mean, std = float(values[train].mean()), float(values[train].std(ddof=0))
            check(std > 0, f"the label {column!r} has one value on every training row; there is nothing to learn.")
            y.append(((values - mean) / std).to_numpy(np.float32))
            described[column] = {"type": "regression", "mean": mean, "std": std}
    names, numeric, categories = [], {}, {}
    for column in inputs:
        values = frame[column]
        if values.dtype.kind == "f":
            numeric[column] = {"mean": float(values[train].mean()), "std": float(values[train].std(ddof=0)) or 1.0}
            names.append(column)
        else:
            levels = sorted(values.astype(str).unique())
            check(len(levels) <= MAX_LEVELS, f"the input {column!r} has {len(levels):,} distinct values; text columns are one-hot "
                                             f"encoded with at most {MAX_LEVELS} values. Leave it out of the inputs, or group its values.")
            categories[column] = levels
            names += [f"{column}={level}" for level in levels]
    check(len(names) <= MAX_INPUTS, f"the inputs encode to {len(names):,} features; at most {MAX_INPUTS:,}. Leave some text columns out.")
    check(len(frame) * len(names) <= MAX_ENCODED,
          f"{len(frame):,} rows x {len(names):,} inputs after one-hot encoding = {len(frame) * len(names):,} numbers; at most "
          f"{MAX_ENCODED:,} (a model's inputs must fit a shared server's memory). Use fewer rows or leave text columns out.")
    return frame, np.stack(y, axis=1), {"features": names, "numeric": numeric, "categories": categories, "labels": described,
                                        "rows": {"used": int(len(frame)), "dropped for a missing value": int(gaps.sum())}}


def _plain(value):
    """A cell value as JSON has it (1.0 stays a number, text stays text)."""
    return float(value) if isinstance(value, (float, np.floating)) else str(value)
