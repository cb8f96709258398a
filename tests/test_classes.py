"""A class in the server's store (mtl_core/serve/classes.py): who may see what, join limits, and a restart; on an
SQLite file and on PostgreSQL (the `where` fixture, conftest.py)."""

import pytest

from mtl_core.serve import classes as classes_module
from mtl_core.serve.classes import ClassError, Classes, NotTeacher
from mtl_core.serve.store import Store

RESULT = {"held": True, "evidence": "final test loss MMoE 0.0289, OMoE 0.0444", "seed": 0, "losses": {"MMoE": 0.0289, "OMoE": 0.0444}}


@pytest.fixture
def store(where):
    opened = Store(where)
    yield opened
    opened.close()


def test_a_class_pools_its_students_and_survives_a_restart(where):
    store = Store(where)
    opened = Classes(store).open("mixtures", seed=100, answers=3)
    classes = Classes(store)
    ada = classes.join(opened.code.lower(), "browser-ada-0001", "Ada", "10.0.0.1")
    bob = classes.join(f" {opened.code[:3]}-{opened.code[3:]} ", "browser-bob-0002", "Bob", "10.0.0.2")
    assert (ada.number, ada.seed, bob.number, bob.seed) == (1, 100, 2, 101)   # each a seed of its own: the class is a sweep
    classes.predict(opened.code, "browser-ada-0001", 0)
    classes.predict(opened.code, "browser-bob-0002", 2)
    classes.submit(opened.code, "browser-ada-0001", RESULT)
    store.close()

    store = Store(where)   # the server restarted
    classes = Classes(store)
    view = classes.dashboard(opened.code, opened.key)
    assert (view.joined, view.predicted, view.finished, view.predictions) == (2, 2, 1, [1, 0, 1])
    assert view.results[0]["name"] == "Ada" and view.results[0]["losses"] == RESULT["losses"] and view.held == 1
    assert classes.join(opened.code, "browser-bob-0002", "someone else").seed == 101   # joining again: the same seed
    assert classes.member("browser-ada-0001").code == opened.code
    store.close()


def test_only_the_teachers_key_opens_the_dashboard_and_students_see_only_the_pooled_result(store):
    classes = Classes(store)
    opened = classes.open("mixtures")
    classes.join(opened.code, "browser-ada-0001", "Ada")
    classes.submit(opened.code, "browser-ada-0001", RESULT)
    for key in ("", "wrong", opened.key[:-1], None):
        with pytest.raises(NotTeacher, match="Only the teacher"):
            classes.dashboard(opened.code, key)
        with pytest.raises(NotTeacher):
            classes.reveal(opened.code, key)
        with pytest.raises(NotTeacher):
            classes.close(opened.code, key)
    other = classes.open("mixtures")
    with pytest.raises(NotTeacher):   # one class's key opens no other class
        classes.dashboard(other.code, opened.key)
    assert classes.pooled(opened.code, "browser-ada-0001") is None   # not revealed yet
    classes.reveal(opened.code, opened.key)
    pooled = classes.pooled(opened.code, "browser-ada-0001")
    assert pooled.held == 1 and pooled.results[0]["name"] == "" and pooled.results[0]["number"] is None
    assert classes.pooled(opened.code, "browser-stranger-01") is None   # not a member: nothing
    with store.reading() as sql:
        assert opened.key not in str(sql.execute("SELECT * FROM classes").fetchall())   # only its hash is stored


def test_wrong_codes_are_limited_per_browser_and_per_address(store, monkeypatch):
    classes = Classes(store)
    opened = classes.open("mixtures")
    for _ in range(classes_module.FAILED_JOINS[0]):
        with pytest.raises(ClassError, match="no class with the code"):
            classes.join("ZZZZZZ", "browser-guesser-01", "", "10.0.0.9")
    with pytest.raises(ClassError, match="Too many wrong class codes"):   # even the right code, for a while
        classes.join(opened.code, "browser-guesser-01", "", "10.0.0.9")
    for n in range(classes_module.FAILED_JOINS[1] - classes_module.FAILED_JOINS[0]):   # new browsers, the same address
        with pytest.raises(ClassError, match="no class"):
            classes.join("ZZZZZZ", f"browser-fresh-{n:04d}", "", "10.0.0.9")
    with pytest.raises(ClassError, match="Too many"):
        classes.join(opened.code, "browser-fresh-9999", "", "10.0.0.9")
    assert classes.join(opened.code, "browser-fresh-9999", "", "10.0.0.10").number == 1   # another address joins
    monkeypatch.setattr(classes_module.time, "time", lambda: 10**10)   # the window passed
    with pytest.raises(ClassError, match="has ended"):   # (and so did the class)
        classes.join(opened.code, "browser-guesser-01", "", "10.0.0.9")


def test_a_class_is_bounded_and_ends(store, monkeypatch):
    classes = Classes(store, capacity=2, hours=1)
    opened = classes.open("mixtures")
    classes.join(opened.code, "browser-a-000000001")
    classes.join(opened.code, "browser-b-000000001")
    with pytest.raises(ClassError, match="full .2 students"):
        classes.join(opened.code, "browser-c-000000001")
    with pytest.raises(ClassError, match="one of the 2 answers"):
        classes.predict(opened.code, "browser-a-000000001", 5)
    with pytest.raises(ClassError, match="Join the class first"):
        classes.predict(opened.code, "browser-c-000000001", 0)
    classes.predict(opened.code, "browser-a-000000001", 1)
    classes.submit(opened.code, "browser-a-000000001", RESULT)
    with pytest.raises(ClassError, match="stays as it was"):   # no changing the prediction once the run is in
        classes.predict(opened.code, "browser-a-000000001", 0)
    assert classes.member("browser-a-000000001").finished
    classes.close(opened.code, opened.key)
    with pytest.raises(ClassError, match="has ended"):
        classes.submit(opened.code, "browser-a-000000001", RESULT)
    assert classes.member("browser-a-000000001") is None
    later = classes.open("mixtures")
    now = classes_module.time.time()
    monkeypatch.setattr(classes_module.time, "time", lambda: now + 3601)
    with pytest.raises(ClassError, match="has ended"):
        classes.join(later.code, "browser-d-000000001")


def test_a_display_name_is_kept_short_and_on_one_line(store):
    classes = Classes(store)
    opened = classes.open("mixtures")
    member = classes.join(opened.code, "browser-a-000000001", "<b>Ada</b>\n\x00" + "x" * 100)
    assert member.name == ("<b>Ada</b> " + "x" * 100)[:classes_module.MAX_NAME]   # escaped where it is drawn, not here


def test_every_kind_of_lesson_outcome_gives_each_models_final_loss():
    """What a finished lesson sends to its class: a race's runs by model, a sweep's runs by model (and correlation when
    it has several), a transfer study's by setting."""
    import pandas as pd

    from mtl_core.studies.lessons import model_losses

    class Run:
        metrics = pd.DataFrame({"task": ["a", "a", "b"], "metric": ["mse", "auc", "logloss"], "value": [0.2, 0.9, 0.4]})

    assert model_losses({"mmoe": Run(), "omoe": Run()}) == {"MMoE": pytest.approx(0.3), "OMoE": pytest.approx(0.3)}
    sweep = pd.DataFrame({"arch": ["mmoe", "mmoe", "shared_bottom", "shared_bottom"], "correlation": [0.2] * 4,
                          "seed": [5, 6, 5, 6], "loss": [0.1, 0.3, 0.4, 0.6]})
    assert model_losses(sweep) == {"MMoE": pytest.approx(0.2), "Shared-Bottom": pytest.approx(0.5)}
    both = pd.concat([sweep, sweep.assign(correlation=1.0, loss=sweep.loss / 2)])
    assert set(model_losses(both)) == {"MMoE p = 0.2", "Shared-Bottom p = 0.2", "MMoE p = 1", "Shared-Bottom p = 1"}
    transfer = pd.DataFrame({"arch": ["shared_bottom"] * 4, "setting": ["all tasks", "all tasks", "single task", "without task 1"],
                             "seed": [0] * 4, "task": ["task 0", "task 1", "task 0", "task 0"], "loss": [0.5, 0.7, 0.4, 0.45]})
    assert model_losses(transfer) == {"all tasks": pytest.approx(0.6), "single task": 0.4, "without task 1": 0.45}
