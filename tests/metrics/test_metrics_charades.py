"""Charades mAP (docs/tasks.md §2.4): scikit-learn's average_precision_score semantics, hand-computed."""

import numpy as np
import pytest

from severe.errors import SevereError
from severe.metrics import charades_map
from severe.metrics.charades import average_precision_per_class


def ap_by_definition(scores, labels):
    """AP = sum_n (R_n - R_{n-1}) P_n over distinct thresholds, descending (readable loop)."""
    npos = labels.sum()
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        sel = scores >= t
        tp = labels[sel].sum()
        recall = tp / npos
        ap += (recall - prev_recall) * tp / sel.sum()
        prev_recall = recall
    return ap


def test_hand_cases_with_ties():
    # class 0: no ties, ranks P N P N -> (1/2)*1 + (1/2)*(2/3)
    # class 1: 0.8 tied between a negative and a positive -> one threshold:
    #          {0.9: P} then {0.8, 0.8: N, P} -> 1/2 * 1 + 1/2 * 2/3  (ordering inside the tie does not matter)
    # class 2: all four tied -> one threshold, precision 2/4, recall 1 -> 0.5
    scores = np.array([[0.9, 0.9, 0.3], [0.7, 0.8, 0.3], [0.6, 0.8, 0.3], [0.1, 0.1, 0.3]])
    labels = np.array([[1, 1, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]])
    ap = average_precision_per_class(scores, labels)
    np.testing.assert_allclose(ap, [5 / 6, 5 / 6, 0.5], rtol=0, atol=1e-15)
    # the positive of class 1 first inside the tie gives the same value (tie = one threshold) ...
    s2 = scores.copy()
    s2[[1, 2], 1] = s2[[2, 1], 1]
    assert average_precision_per_class(s2, labels)[1] == pytest.approx(5 / 6)
    # ... while breaking the tie in favour of the positive raises it to 1
    s2[2, 1] = 0.85
    assert average_precision_per_class(s2, labels)[1] == pytest.approx(1.0)
    assert charades_map(scores, labels) == pytest.approx((5 / 6 + 5 / 6 + 0.5) / 3)


def test_class_without_positive_is_dropped():
    scores = np.array([[0.9, 0.2], [0.1, 0.8], [0.5, 0.4]])
    labels = np.array([[0, 0], [1, 0], [0, 0]])  # class 1: no positive
    # class 0: ranks N N P -> precision 1/3 at recall 1
    assert charades_map(scores, labels) == pytest.approx(1 / 3)
    ap = average_precision_per_class(scores, labels)
    assert ap[0] == pytest.approx(1 / 3) and np.isnan(ap[1])


def test_label_dtypes_and_perfect_ranking():
    scores = np.array([[0.9, 0.1], [0.2, 0.7], [0.1, 0.05]], dtype=np.float32)
    labels = np.array([[1, 0], [0, 1], [0, 0]])
    for lab in (labels, labels.astype(bool), labels.astype(np.float32)):
        assert charades_map(scores, lab) == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_matches_definition_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random((60, 9)), 1)  # many ties
    labels = (rng.random((60, 9)) < 0.3).astype(int)
    labels[:, 4] = 0  # one empty class
    ap = average_precision_per_class(scores, labels)
    for c in range(9):
        if c == 4:
            assert np.isnan(ap[c])
        else:
            assert ap[c] == pytest.approx(ap_by_definition(scores[:, c], labels[:, c]), abs=1e-12)
    expected = np.mean([ap_by_definition(scores[:, c], labels[:, c]) for c in range(9) if c != 4])
    assert charades_map(scores, labels) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "same shape"),
        (np.zeros(3), np.zeros(3), "same shape"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "empty"),
        (np.zeros((2, 2)), np.array([[1, 2], [0, 0]]), "must be 0/1"),
        (np.zeros((2, 2)), np.array([[1, 0.5], [0, 0]]), "must be 0/1"),
        (np.array([[np.nan, 0], [0, 0]]), np.array([[1, 0], [0, 1]]), "non-finite"),
        (np.array([[np.inf, 0], [0, 0]]), np.array([[1, 0], [0, 1]]), "non-finite"),
        (np.zeros((2, 2)), np.zeros((2, 2)), "no class has a positive"),
        (np.zeros((2, 2)), np.array([["a", "b"], ["c", "d"]]), "binary numbers"),
    ],
)
def test_errors_never_return_zero(scores, labels, message):
    with pytest.raises(SevereError, match=message):
        charades_map(scores, labels)
