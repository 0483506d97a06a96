"""The verdict judges a block of variables at once ((variables, points) arrays): a variable's
cells must come out as if it were judged alone, whatever the block size."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import judge
from gradcheck_cli.judge import (
    CONVENTION,
    FAIL,
    KINK,
    NOJUDGE,
    NONDIFF,
    PASS,
    REFERENCE,
    UNRELIABLE,
    Reasons,
    Reference,
    Special,
)

K = 6


def _case() -> dict:
    """Four variables at six points, with every kind of special the judge reads."""
    hi = {"a": np.array([1.0, 2.0, -3.0, 0.0, np.nan, 5.0]),
          "b": np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
          "c": np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
          "d": np.array([2.0, np.nan, 2.0, 2.0, 2.0, 2.0])}
    values = {"a": np.array([1.0, 2.0 + 1e-3, -3.0, 1e-20, 7.0, np.nan]),
              "b": np.array([0.5, 0.7, 0.0, 1.0, 0.5, -0.5]),
              "c": np.array([1.0, 1.0 + 1e-12, 3.0, np.inf, 1.0, 0.2]),
              "d": np.array([2.0, 3.0, 2.0 + 1e-9, 2.5, 2.0, 2.0])}
    refs = {v: Reference(h.copy(), np.zeros(K), np.zeros(K),
                         np.array(["exact", "exact", "exact", "exact", "", "complex"], dtype=object),
                         np.full(K, -1, np.int32)) for v, h in hi.items()}
    specials = {
        "a": Special(),
        "b": Special(interval=(np.zeros(K), np.ones(K)), corner=np.array([0, 1, 1, 0, 0, 0], bool),
                     nondiff_why=np.full(K, 3, np.int32)),
        "c": Special(nondiff=np.array([0, 0, 0, 1, 0, 0], bool), nondiff_why=np.full(K, 4, np.int32),
                     agree=np.array([0, 0, 1, 0, 0, 0], bool), agreed=np.full(K, 2.0),
                     convention_why=np.full(K, 5, np.int32),
                     straddle=np.array([1e-9, 1.0, 1.0, 1.0, 1.0, 1.0]),
                     straddle_why=np.full(K, 6, np.int32)),
        "d": Special(),
    }
    sigmas = {v: np.ones(K) for v in hi}
    return dict(values=values, refs=refs, specials=specials, sigmas=sigmas)


def _judge(case: dict, names: list[str], kind: str, by_estimate: bool) -> judge.Cells:
    est = {v: np.full(K, 1e-12) for v in names}
    step = {v: np.full(K, 1e-6) for v in names}
    return judge.judge_cells(
        "complex", kind, {v: case["values"][v] for v in names}, {"d": np.array([0, 0, 0, 0, 0, 1], bool)},
        {"d": 7}, est if by_estimate else None, step, {v: case["refs"][v] for v in names},
        case["specials"], case["sigmas"], 1e-6, None, by_estimate, 2.0 ** -52, Reasons(),
        rounding={v: np.array([0, 0, 0, 0, 0, 0.0]) for v in names if v != "b"})


@pytest.mark.parametrize("kind,by_estimate", [("ad", False), ("finite-difference", True)])
@pytest.mark.parametrize("block", [1, 6, 13, judge.BLOCK_CELLS])
def test_a_block_judges_each_variable_as_if_alone(monkeypatch: pytest.MonkeyPatch, kind: str,
                                                   by_estimate: bool, block: int) -> None:
    case = _case()
    names = list(case["refs"])
    alone = {v: _judge(case, [v], kind, by_estimate) for v in names}
    monkeypatch.setattr(judge, "BLOCK_CELLS", block)
    together = _judge(case, names, kind, by_estimate)
    for v in names:
        assert np.array_equal(together.code[v], alone[v].code[v]), v
        assert np.array_equal(together.why[v], alone[v].why[v]), v
        assert np.array_equal(together.error[v], alone[v].error[v], equal_nan=True), v
        assert np.array_equal(together.kind[v], alone[v].kind[v]), v
    codes, whys = together.blocks(names)
    assert codes.shape == (4, K) and np.array_equal(codes[2], together.code["c"])


def test_the_cells_are_the_lecture_verdicts() -> None:
    """Hand-derived codes for the AD column of `_case` (rtol 1e-6, no estimate)."""
    got = _judge(_case(), ["a", "b", "c", "d"], "ad", False).code
    # a: equal; 5e-4 off; equal; 1e-20 off an exact 0 (absolute, within rtol·σ); no reference
    # (nan, nothing known); where the reference is the complex step, the method judged is it
    assert list(got["a"]) == [PASS, FAIL, PASS, PASS, NOJUDGE, REFERENCE]
    # b: corner at points 1 and 2 with one-sided derivatives 0 and 1: 0.7 and 0.0 lie inside
    assert list(got["b"]) == [PASS, KINK, KINK, FAIL, PASS, REFERENCE]
    # c: nondifferentiable at point 3 whatever the value; point 2 is an AD convention (3 ≠ the
    # agreed 2, f differentiable there)
    assert list(got["c"])[:4] == [PASS, PASS, CONVENTION, NONDIFF]
    # d: point 1 has no reference; point 5 the method could not compute (bad)
    assert got["d"][1] == NOJUDGE and got["d"][5] == judge.NOTRUN and got["d"][2] == PASS


def test_a_finite_difference_straddling_a_kink_is_unreliable() -> None:
    got = _judge(_case(), ["c"], "finite-difference", True).code["c"]
    assert got[0] == UNRELIABLE  # the kink is 1e-9 away, the step 1e-6


def test_references_from_assemble_are_read_as_blocks_with_the_same_cells(monkeypatch: pytest.MonkeyPatch
                                                                         ) -> None:
    """assemble's references are rows of block arrays, which judge_cells reads as slices; the
    cells equal those of the same references given one by one (no block)."""
    from dataclasses import replace

    monkeypatch.setattr(judge, "BLOCK_CELLS", 12)  # two variables a block at K = 6
    case = _case()
    names = list(case["refs"])
    exact = {v: (r.hi, np.zeros(K), np.zeros(K, bool)) for v, r in case["refs"].items()}
    complex_values = {v: np.where(np.isnan(r.hi), 1.5, r.hi) for v, r in case["refs"].items()}
    refs = judge.assemble(names, K, exact, None, [("complex", complex_values, None, None)], 2.0 ** -52,
                          Reasons(), case["sigmas"])
    assert all(r.rows is not None for r in refs.values())
    assert refs["a"].source[4] == "complex" and refs["a"].hi[4] == 1.5  # the fallback where exact is nan
    loose = {v: replace(r, rows=None) for v, r in refs.items()}
    for kind, by_estimate in (("ad", False), ("finite-difference", True)):
        case["refs"] = refs
        fast = _judge(case, names, kind, by_estimate)
        case["refs"] = loose
        slow = _judge(case, names, kind, by_estimate)
        for v in names:
            assert np.array_equal(fast.code[v], slow.code[v]) and np.array_equal(fast.why[v], slow.why[v])
