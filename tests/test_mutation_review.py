"""The mutation report reads the review file: full names, continuations, ranges, private methods."""

from benchmarks.mutation import EQUIVALENT, reviewed_equivalents, with_review

TEXT = """
## a/m.py

| mutant | change | why |
|---|---|---|
| `x_f__mutmut_6`, `_10` | one | r |
| `x_g__mutmut_52`…`_54`, `x_h__mutmut_1` | two | r |
| `_load__mutmut_9`, `_13`, `_save__mutmut_10` | three | r |

## b/n.py

| mutant | change | why |
|---|---|---|
| `write__mutmut_17` | four | r |
"""


def test_names_continuations_ranges_and_private_methods():
    r = reviewed_equivalents(TEXT)
    assert r == {
        "a/m.py": {
            "x_f__mutmut_6",
            "x_f__mutmut_10",
            "x_g__mutmut_52",
            "x_g__mutmut_53",
            "x_g__mutmut_54",
            "x_h__mutmut_1",
            "_load__mutmut_9",
            "_load__mutmut_13",
            "_save__mutmut_10",
        },
        "b/n.py": {"write__mutmut_17"},
    }


def test_the_kill_rate_of_the_others_leaves_the_equivalent_ones_out():
    result = {
        "b/n.py": {
            "mutants": 10,
            "killed": 8,
            "survived": 2,
            "not_run": 0,
            "survivors": ["b.n.xǁStoreǁwrite__mutmut_17", "b.n.xǁStoreǁwrite__mutmut_18"],
        }
    }
    out = with_review(result, reviewed_equivalents(TEXT))["b/n.py"]
    assert out["equivalent"] == 1 and out["unreviewed_survivors"] == ["b.n.xǁStoreǁwrite__mutmut_18"]
    assert out["kill_rate_non_equivalent"] == round(8 / 9, 4)


def test_the_committed_review_file_parses():
    assert all(names for names in reviewed_equivalents(EQUIVALENT.read_text()).values())
