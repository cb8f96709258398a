"""Start: what multi-task learning is, every architecture as a picture, and guided lessons."""

from urllib.parse import parse_qs

import streamlit as st

import pages
from mtl_core import charts
from mtl_core.models import ARCHITECTURES, REGISTRY, ModelConfig, build_plan
from mtl_core.models.registry import label
from pages.common import knob_panel, open_link

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

st.header("Every architecture is a routing of experts to gates")
st.write("Each picture shows, for one level of the network, which experts (columns) each gate (rows) may mix. "
         "Blue experts are shared by everyone, orange ones by a task group, green ones belong to one task.")
arch = st.segmented_control("architecture", ARCHITECTURES, default="mmoe", format_func=label, key="start_arch")
arch = arch or "mmoe"
tasks = ("click", "like", "watch", "comment")
config = ModelConfig.for_arch(arch, experts=4, task_experts=1, group_experts=1)
plan = build_plan(config, tasks, (0, 0, 1, 1))
st.altair_chart(charts.routing_chart(plan))
st.caption(REGISTRY[arch].caption + (" (Tasks here: click and like in group 0, watch and comment in group 1.)" if arch == "home" else ""))

st.header("Lessons")
st.write("Each lesson opens the Playground with a preset. **Predict before you press Play**, then open the explanation.")
LESSONS = [
    ("Lower the task correlation: which model suffers first?",
     "playground?arch=Shared-Bottom&arch=OMoE&arch=MMoE&corr=0.2&samples=20000&epochs=15&hide=arch",
     "Shared-Bottom's test loss ends highest, and in our measured sweep its runs are far more often poor "
     "(30% of seeds more than twice the best model on the same data, against 0-5% for OMoE and MMoE). The per-task "
     "gates of MMoE let each task take a different mix, so weakly related tasks fight less. "
     "See docs/EXPERIMENTS.md, section 1-2, and the Correlation sweep page."),
    ("Identical tasks (p = 1): does MMoE still beat OMoE?",
     "playground?arch=OMoE&arch=MMoE&corr=1.0&samples=20000&epochs=15",
     "Barely. When the tasks are the same, one gate is as good as two: in our trainability study MMoE beat OMoE on about "
     "half of the seeds at p = 1 but on most seeds at p = 0.5."),
    ("Turn off HoME's expert normalisation: what happens to the experts?",
     "playground?arch=HoME&norm=false&samples=20000&hide=arch",
     "With ReLU and no normalisation, a third of the experts' outputs are exactly zero (the red bars) and their output "
     "scales drift apart; shared experts are more often taken over by a single task. Compare on the HoME ablation page."),
    ("A sparse task (5% positives) next to a dense one: whose experts does it use?",
     "playground?arch=CGC&arch=HoME&tasks=2&dense=0&sparse=1&rate=0.05&samples=20000",
     "Open *Inside the experts* after training and look at 'own vs shared': the sparse task's gate leans on shared "
     "experts, which the dense task trains. This is what HoME calls expert underfitting."),
    ("Raise the learning rate to 0.1 during training: what breaks?",
     "playground?arch=MMoE",
     "Press Play, then move the learning rate to 0.1 while it runs: the loss jumps and may become NaN; the run then "
     "stops and says at which step, and suggests a lower rate."),
]
for number, (question, link, answer) in enumerate(LESSONS):
    with st.container(border=True):
        st.markdown(f"**{question}**")
        page, _, query = link.partition("?")
        if st.button("Open this lesson in the Playground", key=f"lesson {number}", icon=":material/play_circle:"):
            open_link(f"pages/{page}.py", parse_qs(query))
        st.caption(f"The lesson's link, to share: `/{link}`")
        with st.expander("Explanation (after you ran it)"):
            st.write(answer)

st.header("What the numbers mean")
st.write("Regression labels are standardised, so a test MSE of 1.0 means 'no better than predicting the mean'. "
         "Binary tasks report AUC and GAUC (AUC within each pseudo-user, weighted by the user's samples). Every chart is "
         "computed from runs on your settings; the bundled sweep and ablation tables were produced by the project's "
         "own experiment commands.")
