"""The one batched top-k: padding, exclusion, ties, and agreement with a brute-force reference."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from assets.common.topk import batched_topk, interaction_mask, take_ids, topk


def reference(scores, k, exclude):
    out_i, out_s = [], []
    for r, row in enumerate(scores):
        cand = [(-float(v), c) for c, v in enumerate(row) if v > -np.inf and not exclude[r, c]]
        cand.sort()
        top = cand[:k]
        out_i.append([c for _, c in top] + [-1] * (k - len(top)))
        out_s.append([-v for v, _ in top] + [-np.inf] * (k - len(top)))
    return np.array(out_i, np.int64).reshape(len(scores), k), np.array(out_s, np.float32).reshape(
        len(scores), k
    )


def test_excludes_pads_and_orders():
    s = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]], np.float32)
    ex = sp.csr_matrix(np.array([[0, 1, 0], [1, 1, 0]]))
    ids, sc = topk(s, 3, ex)
    assert ids.tolist() == [[2, 0, -1], [2, -1, -1]]
    assert sc[0, :2].tolist() == pytest.approx([0.5, 0.1]) and np.isneginf(sc[0, 2])
    ids, sc = topk(s, 5)  # k beyond the columns pads
    assert ids.shape == (2, 5) and ids[0].tolist() == [1, 2, 0, -1, -1]
    assert s[0, 1] == np.float32(0.9)  # the input is not modified


def test_ties_nan_and_empty():
    ids, _ = topk(np.array([[1.0, 1.0, np.nan, 1.0]]), 4)
    assert ids.tolist() == [[0, 1, 3, -1]]  # ties by column; NaN is never returned
    assert topk(np.zeros((0, 5)), 3)[0].shape == (0, 3)
    assert topk(np.zeros((2, 0)), 3)[0].tolist() == [[-1] * 3] * 2
    with pytest.raises(ValueError, match="shape"):
        topk(np.zeros((2, 3)), 1, sp.csr_matrix((3, 3)))


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 9)),
        elements=st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan, np.inf, -np.inf]),
    ),
    st.integers(0, 12),
    st.integers(0, 2**31 - 1),
)
def test_matches_reference(scores, k, seed):
    ex = np.random.default_rng(seed).random(scores.shape) < 0.3
    ids, sc = topk(scores, k, ex)
    ri, rs = reference(scores, k, ex)
    np.testing.assert_array_equal(ids, ri)
    np.testing.assert_array_equal(sc, rs)


def test_batched_equals_unbatched_and_ids_map():
    rng = np.random.default_rng(0)
    q, c = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(40, 8)).astype(np.float32)
    pairs = pd.DataFrame({"user_id": rng.integers(0, 50, 200), "item_id": rng.integers(100, 140, 200)})
    mask = interaction_mask(pairs, np.arange(50), np.arange(100, 140))
    a = batched_topk(q, c, 7, mask, batch=9)
    b = topk(q @ c.T, 7, mask)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
    assert not any(mask[r, p] for r, row in enumerate(a[0]) for p in row if p >= 0)
    ids = take_ids(np.arange(100, 140), a[0])
    assert ids.min() >= 100 and take_ids(np.array([5, 6]), np.array([[1, -1]])).tolist() == [[6, -1]]


def test_types_messages_and_dense_exclusion():
    """Exact dtypes (callers index with the ids and store the scores as float32), the error text,
    and a dense bool mask excluding the same as a sparse one."""
    with pytest.raises(ValueError, match="k must be >= 0, got -1"):
        topk(np.zeros((1, 2)), -1)
    with pytest.raises(ValueError, match=r"exclude has shape \(1, 2\), scores \(2, 2\)"):
        topk(np.zeros((2, 2)), 1, np.zeros((1, 2), bool))
    s = np.array([[0.25, 1e-9, 3.0], [1.0, 2.0, 0.5]])  # float64 in: scores come back float32
    for ids, sc in (topk(s, 2), topk(s, 0), topk(s[:0], 2), topk(s, 5)):
        assert ids.dtype == np.int64 and sc.dtype == np.float32
    ids, sc = topk(s, 3, np.array([[False, True, False], [True, False, False]]))
    assert ids.tolist() == [[2, 0, -1], [1, 2, -1]] and np.isneginf(sc[:, 2]).all()
    assert sc[0, :2].tolist() == [3.0, 0.25]


def test_take_ids_maps_types_and_empty_catalogues():
    pos = np.array([[1, -1, 0]])
    got = take_ids(np.array([10.0, 20.0]), pos)
    assert got.tolist() == [[20, -1, 10]] and got.dtype == np.int64
    assert take_ids(np.array([], np.int64), pos).tolist() == [[-1, -1, -1]]


def test_interaction_mask_ignores_unknown_ids_and_keeps_the_full_shape():
    pairs = pd.DataFrame({"user_id": [1, 1, 9, 2, 1], "item_id": [10, 11, 10, 77, 10]})
    m = interaction_mask(pairs, np.array([1, 2, 3]), np.array([10, 11, 12]))
    assert m.shape == (3, 3) and m.dtype == np.float32  # user 3 and item 12 have no pair: still there
    assert m.toarray().tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]  # 9 and 77 unknown; (1,10) twice is one
    other = pairs.rename(columns={"user_id": "a", "item_id": "b"})
    assert (interaction_mask(other, np.array([1, 2, 3]), np.array([10, 11, 12]), "a", "b") != m).nnz == 0


def test_batched_topk_without_exclusion_and_across_batches():
    rng = np.random.default_rng(0)
    q, c = rng.normal(size=(7, 4)).astype(np.float32), rng.normal(size=(9, 4)).astype(np.float32)
    ids, sc = batched_topk(q, c, 3, batch=2)
    ref_ids, ref_sc = topk(q @ c.T, 3)
    assert ids.dtype == np.int64 and sc.dtype == np.float32
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(sc, ref_sc, rtol=1e-6)
    ex = sp.coo_matrix(np.eye(7, 9))  # any sparse format
    np.testing.assert_array_equal(batched_topk(q, c, 3, ex, batch=3)[0], topk(q @ c.T, 3, ex)[0])


def test_one_row_ties_above_the_cut_nan_and_integer_masks():
    """Cases the mutation run found untested (each killed a surviving mutant)."""
    ids, sc = topk(np.array([0.2, 0.9, 0.5]), 2)  # a 1-D score vector is one row
    assert ids.tolist() == [[1, 2]] and sc.shape == (1, 2)
    ids, _ = topk(np.array([[2.0, 1.0, 1.0, 1.0]]), 2)  # one above the tie, then the lowest tied column
    assert ids.tolist() == [[0, 1]]
    ids, _ = topk(np.array([[np.nan, 0.5, 0.2]]), 1)  # NaN is never the best
    assert ids.tolist() == [[1]]
    ids, _ = topk(
        np.array([[0.1, 0.9, 0.5]]), 2, np.array([[0, 1, 0]])
    )  # a 0/1 integer mask, not row indices
    assert ids.tolist() == [[2, 0]]
    rng = np.random.default_rng(1)
    q, c = rng.normal(size=(5, 3)), rng.normal(size=(6, 3))
    dense = np.zeros((5, 6), bool)
    dense[:, 0] = True
    np.testing.assert_array_equal(batched_topk(q, c, 2, dense, batch=2)[0], topk(q @ c.T, 2, dense)[0])


def test_several_rows_tied_at_the_cut_in_one_call():
    """Each ambiguous row resolves its own ties (a flattened cumulative count would mix rows)."""
    ids, _ = topk(np.array([[2.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 3.0], [5.0, 4.0, 3.0, 2.0]]), 2)
    assert ids.tolist() == [[0, 1], [3, 0], [0, 1]]
