"""Every claim the app makes about why holds on the bundled studies it cites, against its control."""

import pytest

from mtl_core.studies.claims import CLAIMS, claim
from mtl_core.studies.lessons import lesson


@pytest.mark.parametrize("key", [c.key for c in CLAIMS])
def test_the_study_supports_the_words(key):
    verdict = claim(key).verdict()
    assert verdict.held, verdict.evidence


def test_a_claim_fails_when_its_control_comes_out_otherwise():
    sharing = claim("sharing-gap")
    assert not sharing.holds({**sharing.evidence(), "gap_1": 1.0})   # no gap with identical tasks: it would be conflict
    poor = claim("poor-runs")
    assert not poor.holds({**poor.evidence(), "sb_1": 0.0})          # no poor runs with identical tasks


def test_the_lessons_give_the_claims_words_with_the_studys_numbers():
    assert claim("sharing-gap").text() in lesson("sharing").explanation
    assert claim("poor-runs").text()[1:] in lesson("sharing").explanation
    assert "1.32x" in claim("sharing-gap").text() and "32%" in claim("poor-runs").text()   # data/lesson_sweep.csv's numbers


def test_census_and_the_ablation_say_what_does_not_reproduce():
    assert claim("census").text() in lesson("census").explanation
    census = claim("census")
    assert not census.holds({**census.evidence(), "won_1": 0})                  # MMoE winning would contradict the words
    mask = claim("ablation-mask")
    assert not mask.holds({**mask.evidence(), "unmasked": mask.evidence()["home"] + 0.2})   # the mask would have protected


def test_the_funnel_lessons_say_what_the_studies_found():
    assert claim("funnel-sparsity").text() in lesson("few-clicks").explanation
    assert claim("hidden-cause").text() in lesson("funnel").explanation
    hidden = claim("hidden-cause")
    assert not hidden.holds({**hidden.evidence(), "lowest_2": 1.1})    # a model that removed the bias would contradict it
    sparse = claim("funnel-sparsity")
    assert not sparse.holds({**sparse.evidence(), "won_dense": sparse.evidence()["seeds"]})   # ESMM winning everywhere
    related = claim("funnel-relatedness")
    assert related.text() in lesson("few-clicks").explanation
    assert not related.holds({**related.evidence(), "won": related.evidence()["seeds"]})   # ESMM winning without related tasks


def test_the_home_lessons_read_their_numbers_from_the_study_and_name_their_controls():
    assert claim("expert-zeros").text() in lesson("collapse").explanation
    assert claim("sparse-own").text() in lesson("sparse").explanation
    zeros = claim("expert-zeros")
    assert not zeros.holds({**zeros.evidence(), "worst": 0.95})        # a collapsed expert would contradict "none collapsed"
    assert not zeros.holds({**zeros.evidence(), "zero_on": 0.1})       # zeros with the switch on: the switch would not explain them
    sparse = claim("sparse-own")
    assert not sparse.holds({**sparse.evidence(), "sparse": 0.3})      # a self-gate that did not raise the sparse tasks' share


def test_the_weightings_lesson_races_the_studys_tuned_weight_and_says_where_adaptive_ones_won():
    weightings = lesson("weightings")
    assert claim("tuned-weight").text() in weightings.explanation and claim("uncertainty-wins").text() in weightings.explanation
    assert weightings.settings["tw"] == 10.0 and "0 of 52 comparisons" in claim("tuned-weight").text()   # data/weightings.csv's
    tuned = claim("tuned-weight")
    assert not tuned.holds({**tuned.evidence(), "beaten": 1})       # an adaptive weighting beyond chance would contradict "none"
    assert not tuned.holds({**tuned.evidence(), "held": 5})         # the rivals as good as the tuned weight on half the seeds
    wins = claim("uncertainty-wins")
    assert not wins.holds({**wins.evidence(), "p_sb": 0.2})          # a win within chance would not be a win
