"""Recognition metrics against hand-computed cases (docs/protocol.md §4, §8.4)."""

import math

import numpy as np
import pytest

from severe.errors import SevereError
from severe.metrics import knn_classify, knn_votes, label_ranks, video_accuracy

# 5 videos, 6 classes; classes 3 and 4 have no test video.
SCORES = np.array(
    [
        [0.10, 0.20, 0.50, 0.10, 0.05, 0.05],  # label 2: rank 0
        [0.30, 0.40, 0.10, 0.10, 0.05, 0.05],  # label 0: rank 1
        [0.30, 0.25, 0.20, 0.15, 0.10, 0.00],  # label 5: rank 5
        [0.40, 0.40, 0.10, 0.10, 0.00, 0.00],  # label 1: tied with class 0, which comes first -> rank 1
        [0.40, 0.40, 0.10, 0.10, 0.00, 0.00],  # label 0: tied with class 1, comes first -> rank 0
    ]
)
LABELS = np.array([2, 0, 5, 1, 0])


def test_video_accuracy_hand_case():
    m = video_accuracy(SCORES, LABELS, num_classes=6)
    assert label_ranks(SCORES, LABELS).tolist() == [0, 1, 5, 1, 0]
    assert m["video_top1"] == pytest.approx(2 / 5)
    assert m["video_top5"] == pytest.approx(4 / 5)
    # per class: 0 -> 1/2, 1 -> 0, 2 -> 1, 5 -> 0; mean over the 4 present classes (not over all 6)
    assert m["per_class_top1"] == [0.5, 0.0, 1.0, None, None, 0.0]
    assert m["mean_class_accuracy"] == pytest.approx(1.5 / 4)
    assert m["classes_evaluated"] == 4
    assert m["classes_absent"] == [3, 4]
    assert m["num_videos"] == 5


def test_top5_tie_at_boundary_uses_class_order():
    scores = np.full((3, 7), 0.1)
    m = video_accuracy(scores, np.array([0, 3, 6]), num_classes=7)
    # all tied: ranks equal the label ids 0, 3, 6
    assert m["video_top1"] == pytest.approx(1 / 3)
    assert m["video_top5"] == pytest.approx(2 / 3)


def test_ranks_match_stable_descending_sort():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(200, 9)).astype(np.float32)  # many ties
    labels = rng.integers(0, 9, size=200)
    order = np.argsort(-scores, axis=1, kind="stable")
    expected = np.array([int(np.flatnonzero(order[i] == labels[i])[0]) for i in range(200)])
    assert np.array_equal(label_ranks(scores, labels), expected)
    assert video_accuracy(scores, labels, 9)["video_top1"] == pytest.approx(np.mean(scores.argmax(1) == labels))


def test_fewer_than_five_classes_top5_is_all():
    m = video_accuracy(np.array([[0.1, 0.2, 0.7]]), np.array([0]), num_classes=3)
    assert (m["video_top1"], m["video_top5"]) == (0.0, 1.0)


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        (np.array([[0.5, np.nan]]), np.array([0]), "non-finite"),
        (np.array([[0.5, 0.5]]), np.array([2]), "outside"),
        (np.array([[0.5, 0.5, 0.0]]), np.array([0]), "shape"),
        (np.zeros((0, 2)), np.zeros(0, dtype=int), "no test items"),
        (np.array([[0.5, 0.5]]), np.array([0.0]), "integers"),
    ],
)
def test_video_accuracy_rejects_bad_input(scores, labels, match):
    with pytest.raises(SevereError, match=match):
        video_accuracy(scores, labels, num_classes=2)


# ---------------------------------------------------------------------------------------------- kNN
TRAIN = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
TRAIN_LABELS = np.array([0, 1, 1, 2])
QUERY = np.array([[2.0, 0.5]])


def test_knn_votes_hand_case():
    q = QUERY[0] / np.linalg.norm(QUERY[0])
    sim_a, sim_b, sim_c = q[0], q[1], (q[0] + q[1]) / math.sqrt(2)  # cosine to (1,0), (0,1), (1,1)
    t = 0.5
    votes2 = knn_votes(TRAIN, TRAIN_LABELS, QUERY, 2, num_classes=3, temperature=t)
    assert votes2[0] == pytest.approx([math.exp(sim_a / t), math.exp(sim_c / t), 0.0], rel=1e-12)
    votes3 = knn_votes(TRAIN, TRAIN_LABELS, QUERY, 3, num_classes=3, temperature=t)
    assert votes3[0] == pytest.approx([math.exp(sim_a / t), math.exp(sim_c / t) + math.exp(sim_b / t), 0.0], rel=1e-12)
    # k = 2: the nearest item (class 0) wins; k = 3: two class-1 neighbours outvote it
    assert knn_classify(TRAIN, TRAIN_LABELS, QUERY, 2, num_classes=3, temperature=t).tolist() == [0]
    assert knn_classify(TRAIN, TRAIN_LABELS, QUERY, 3, num_classes=3, temperature=t).tolist() == [1]
    # features are L2-normalised: scaling changes nothing
    assert np.allclose(knn_votes(10 * TRAIN, TRAIN_LABELS, 0.1 * QUERY, 3, num_classes=3, temperature=t), votes3)


def test_knn_default_temperature_is_svt():
    votes = knn_votes(TRAIN, TRAIN_LABELS, np.array([[1.0, 0.0]]), 1, num_classes=3)
    assert votes[0, 0] == pytest.approx(math.exp(1 / 0.07))


def test_knn_neighbour_ties_take_lower_training_index():
    feats = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    q = np.array([[1.0, 0.0]])
    assert knn_classify(feats, np.array([1, 0, 0]), q, 1, num_classes=2).tolist() == [1]
    assert knn_classify(feats, np.array([0, 1, 0]), q, 1, num_classes=2).tolist() == [0]
    # equal vote totals: lower class id
    assert knn_classify(feats, np.array([3, 1, 0]), q, 2, num_classes=4).tolist() == [1]


def test_knn_chunks_agree_with_brute_force():
    rng = np.random.default_rng(1)
    train, test = rng.normal(size=(50, 8)), rng.normal(size=(13, 8))
    labels = rng.integers(0, 5, size=50)
    votes = knn_votes(train, labels, test, 7, num_classes=5, temperature=0.1, chunk_size=4)
    tn = train / np.linalg.norm(train, axis=1, keepdims=True)
    qn = test / np.linalg.norm(test, axis=1, keepdims=True)
    sim = qn @ tn.T
    expected = np.zeros((13, 5))
    for i in range(13):
        for j in np.argsort(-sim[i], kind="stable")[:7]:
            expected[i, labels[j]] += np.exp(sim[i, j] / 0.1)
    assert np.allclose(votes, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 5}, "k = 5"),
        ({"k": 0}, "k = 0"),
        ({"k": 1, "temperature": 0.0}, "temperature"),
        ({"k": 1, "test_feats": np.zeros((1, 2))}, "all-zero"),
        ({"k": 1, "test_feats": np.zeros((1, 3))}, "equal D"),
    ],
)
def test_knn_rejects_bad_input(kwargs, match):
    args = {"test_feats": QUERY, **kwargs}
    with pytest.raises(SevereError, match=match):
        knn_votes(TRAIN, TRAIN_LABELS, args.pop("test_feats"), args.pop("k"), num_classes=3, **args)
