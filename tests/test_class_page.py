"""The Class page (pages/class.py) as a teacher and students use it, in AppTest: open a class, join from its link,
predict before the lesson opens on the student's own seed, the dashboard behind the teacher's key, revealing."""

from conftest import open_page
from pages.classes import classes

RESULT = {"held": False, "evidence": "final test loss MMoE 0.0500, OMoE 0.0444", "seed": 1, "losses": {"MMoE": 0.05, "OMoE": 0.0444}}


def press(at, label):
    next(b for b in at.button if b.label.startswith(label)).click().run()
    assert not at.exception, [e.value for e in at.exception]


def open_class(lesson="mixtures", seed=0):
    teacher = open_page("pages/class.py")
    teacher.selectbox[0].set_value(lesson)
    teacher.number_input[0].set_value(seed)
    press(teacher, "Open the class")
    return teacher, teacher.session_state["class_teacher"]


def join(code, name=""):
    student = open_page("pages/class.py", join=code)
    assert student.text_input[0].value == code   # the join link fills the code in
    student.text_input[1].input(name)
    press(student, "Join")
    return student


def test_a_teacher_opens_a_class_and_students_join_predict_and_open_the_lesson_on_their_own_seed():
    teacher, (code, key) = open_class(seed=40)
    assert f"{code[:3]} {code[3:]}" in teacher.markdown[0].value and f"/class?join={code}" in teacher.markdown[1].value
    assert len(teacher.get("image")) == 1   # the QR code
    ada, bob = join(code, "Ada"), join(code, "Bob")
    assert "seed **41**" in bob.markdown[1].value   # the second to join trains the class's seed + 1
    assert not [b for b in bob.button if b.label.startswith("Open the lesson")]   # a prediction first
    bob.radio[0].set_value(1).run()
    press(bob, "Send my prediction")
    press(bob, "Open the lesson")
    assert bob.query_params["seed"] == "41" and "seed" in bob.query_params["hide"]   # locked to the student's seed
    assert "Lesson:" in bob.info[0].value
    teacher.run()
    assert [m.value for m in teacher.metric] == ['2', '1', '0']   # joined, predicted, finished
    assert "class_teacher" not in ada.session_state and not ada.metric   # a student has no dashboard


def test_the_dashboard_needs_the_teachers_key_and_students_see_the_pooled_result_once_revealed():
    teacher, (code, key) = open_class()
    student = join(code)
    classes().submit(code, student.session_state["browser_token"], RESULT)
    stranger = open_page("pages/class.py", code=code, key=key[:-2] + "xx")   # the dashboard's address without the key
    assert "Only the teacher" in stranger.error[0].value and not stranger.metric
    assert "class_teacher" not in stranger.session_state
    student.run()
    assert "when your teacher reveals it" in " ".join(c.value for c in student.caption)
    again = open_page("pages/class.py", code=code, key=key)   # the teacher link on another device
    assert [m.value for m in again.metric] == ['1', '0', '1'] and not again.query_params.get("key")   # the key leaves the address bar
    press(again, "Reveal the result to students")
    student.run()
    shown = " ".join(m.value for m in student.markdown)
    assert "0 of 1 runs (0%) showed what the lesson predicts" in shown and "Ada" not in shown


def scripts(at) -> str:
    return " ".join(element.proto.body for element in at.get("html"))


def test_the_teachers_key_is_kept_only_when_it_is_a_key_and_moves_the_browser_to_the_teachers_process(monkeypatch):
    teacher, (code, key) = open_class()
    assert f"mtl_teacher={code}.{key}" in scripts(teacher) and "reload" not in scripts(teacher)   # one process: no move
    monkeypatch.setenv("MTL_TEACHERS_APART", "1")   # behind serve's proxy, in a students' process
    linked = open_page("pages/class.py", code=code, key=key)
    assert "window.top.location.reload()" in scripts(linked) and f"!== '{code}'" in scripts(linked)
    monkeypatch.setenv("MTL_TEACHER_PROCESS", "1")   # already in the teachers' process
    assert "reload" not in scripts(open_page("pages/class.py", code=code, key=key))
    wrong = open_page("pages/class.py", code=code, key=key[:-2] + "xx")   # a key of the right form that opens nothing
    assert f"mtl_teacher={code}" not in scripts(wrong) and "reload" not in scripts(wrong)
    crafted = open_page("pages/class.py", code="A';alert(1);'", key=key)   # a link's code goes nowhere near a script
    assert "alert" not in scripts(crafted) and "Only the teacher" in crafted.error[0].value
