"""Start: what multi-task learning is, every architecture as a picture, and guided lessons."""

from urllib.parse import urlencode

import streamlit as st

import pages
from mtl_core.models import ARCHITECTURES, REGISTRY, build_plan, ModelConfig
from mtl_core.models.registry import label
from mtl_core.studies.claims import claim
from mtl_core.studies.lessons import LESSONS
from mtl_core.view import charts, network
from pages.lesson import lesson_check
from pages.panel import knob_panel, open_link

pages.start_page()
knob_panel("start", {})  # no settings here: a link that sets any gets a notice

st.title("MTL Playground")
st.write(
    "**Multi-task learning** trains one network for several tasks, say *click*, *like* and *watch time*. "
    "Sharing helps when tasks are related: each task borrows what the others learned. It hurts when they "
    "disagree, because the shared part is pulled in two directions and one task improves at the other's "
    "expense (the *seesaw*). **Mixtures of experts** share smarter: several small *experts*, and a *gate* per "
    "task that decides how much of each expert that task uses."
)
st.caption("What this app's own sweep shows about that: " + claim("sharing-gap").text())

st.header("Every architecture is a routing of experts to gates")
st.write("The first picture draws the network; the second shows, for each level, which experts (columns) each gate "
         "(rows) may mix. Blue experts are shared by everyone, orange ones by a task group, green ones belong to one task.")
arch = st.segmented_control("architecture", ARCHITECTURES, default="mmoe", format_func=label, key="start_arch")
arch = arch or "mmoe"
funnel = REGISTRY[arch].funnel is not None   # a click -> conversion head has exactly those two tasks
tasks = ("click", "conversion") if funnel else ("click", "like", "watch", "comment")
config = ModelConfig.for_arch(arch, experts=4, task_experts=1, group_experts=1)
plan = build_plan(config, tasks, (0,) * len(tasks) if funnel else (0, 0, 1, 1))
drawing, mask = st.tabs(["The network", "Which gate sees which expert"])
drawing.altair_chart(charts.network_chart(network.frame(plan, tasks)))
drawing.caption("Left to right: the input, each level's experts (circles, ringed blue when shared, orange for a group, green for one task) and gates (squares), the towers "
                "and the tasks. Every gate mixes the experts it is linked to; here each link is as wide as an equal share, "
                "as at the start of training. On the Playground the links follow the gates as they learn.")
mask.altair_chart(charts.routing_chart(plan))
st.caption(REGISTRY[arch].caption + (" (Tasks here: click and like in group 0, watch and comment in group 1.)" if arch == "home" else ""))

st.header("Lessons")
st.write("Each lesson opens a page with a preset and asks a question. **Predict before you run it**; when the run is "
         "over, the page checks the lesson's prediction on your run. Every lesson's prediction is checked on real runs "
         "(`python -m mtl_core lessons`): it holds on the default seed and on most other seeds, not always.")
checked = lesson_check()
PAGE_TITLES = {"playground": "Playground", "sweep": "Correlation sweep", "transfer": "Does sharing help?"}   # the menu's names
for lesson in LESSONS:
    with st.container(border=True):
        st.markdown(f"**{lesson.question}**")
        measured = checked.get(lesson.key)
        if measured is not None:
            played = measured.get("app_seconds")
            took = (f"About {played:.0f} s in the app on a 2-core server (training alone: {measured['seconds']:.0f} s)"
                    if played is not None else f"About {measured['seconds']:.0f} s of training on a 2-core server")
            beyond = "" if measured.get("p") is None else f", by margins beyond chance (Wilcoxon p = {measured['p']:.2g})"
            st.caption(f"{took}; its prediction held on {measured['held']}/{measured['seeds']} other seeds in the "
                       f"lesson check ({measured['date']}){beyond}.")
        page = f"pages/{lesson.page}.py"
        if st.button(f"Open this lesson ({PAGE_TITLES[lesson.page]})",
                     key=f"lesson {lesson.key}", icon=":material/play_circle:"):
            open_link(page, lesson.link(), lesson.key)
        st.caption(f"The lesson's link, to share: `/{lesson.page}?{urlencode(lesson.link(), doseq=True)}`")
        with st.expander("The prediction and the explanation (after you ran it)"):
            st.write(f"**Prediction:** {lesson.predicts}  \n**What you should see:** {lesson.see}")
            st.write(lesson.explanation)

st.header("What the numbers mean")
st.write("Regression labels are standardised, so a test MSE of 1.0 means 'no better than predicting the mean'. "
         "Binary tasks report AUC and GAUC (AUC within each pseudo-user, weighted by the user's samples). Every chart is "
         "computed from runs on your settings; the bundled sweep and ablation tables were produced by the project's "
         "own experiment commands.")
