"""Core v2: the IR and its one interpreter, the zero convention, the honest verdict, many points.

Every reproduction of the "Core v2" issue is a test here with the outcome and exit code it must
have. Expected values are lecture numbers, hand derivatives, or exact rationals.
"""

from __future__ import annotations

import importlib
import json
import math
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner, Result

from gradcheck_cli import check, forward, parse, reverse
from gradcheck_cli.cli import cli
from gradcheck_cli.graph import GraphBuilder, evaluate
from gradcheck_cli.interpret import backward
from gradcheck_cli.methods import DEFAULT_METHODS, METHODS, REGISTRY
from gradcheck_cli.rules import RULES, Rule

check_module = importlib.import_module("gradcheck_cli.check")  # the module, not check()


def run(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))


def as_json(*args: str) -> tuple[int, dict]:
    result = run(*args, "--format", "json")
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def status(data: dict, method: str) -> dict:
    return next(m for m in data["methods"] if m["name"] == method)["cells"]


# --------------------------------------------------------------------------------------------
# The IR and the one interpreter
# --------------------------------------------------------------------------------------------


def test_graph_has_outputs_labels_and_scalar_shapes() -> None:
    b = GraphBuilder()
    x, y, z = b.var("x"), b.var("y"), b.var("z")
    q = b.op("add", (x, y))
    f = b.op("mul", (q, z))
    g = b.build([f, q], labels={q: "q", f: "f"})
    assert g.outputs == (g.output, g.outputs[1]) and len(g.outputs) == 2
    assert set(g.labels.values()) == {"q", "f"}
    assert all(shape == () for shape in g.shapes) and len(g.shapes) == len(g.nodes)
    # the batch axis is not a shape: values at 3 points have shape (3,), the node shape stays ()
    values = evaluate(g, {"x": np.array([-2.0, 1, 0]), "y": np.array([5.0, 1, 0]),
                          "z": np.array([-4.0, 2, 1])})
    assert values[g.outputs[0]].tolist() == [-12.0, 4.0, 0.0]
    assert values[g.outputs[1]].tolist() == [3.0, 2.0, 0.0]


def test_backward_observer_sees_every_edge_with_the_lecture_numbers() -> None:
    # f = (x + y) z at x = -2, y = 5, z = -4: q = 3, ∂f/∂z = q = 3, ∂f/∂q = z = -4, ∂f/∂x = -4
    g = parse("(x+y)*z")
    values = evaluate(g, {"x": np.asarray(-2.0), "y": np.asarray(5.0), "z": np.asarray(-4.0)})
    edges = []

    def observe(i, j, a, upstream, partial, contribution, adjoint):
        edges.append((g.nodes[i].op, g.nodes[a].op if g.nodes[a].op != "var" else g.nodes[a].name,
                      float(upstream), float(partial), float(contribution), float(adjoint)))

    adjoint = backward(g, values, ["x", "y", "z"], observer=observe)
    assert edges == [
        ("mul", "add", 1.0, -4.0, -4.0, -4.0),
        ("mul", "z", 1.0, 3.0, 3.0, 3.0),
        ("add", "x", -4.0, 1.0, -4.0, -4.0),
        ("add", "y", -4.0, 1.0, -4.0, -4.0),
    ]
    assert float(adjoint[g.var_nodes["z"]]) == 3.0


def test_zero_convention_is_the_same_in_both_ad_modes() -> None:
    # structural zero: x*sqrt(y) at y = 0, the x direction never meets sqrt's infinite partial
    g = parse("x*sqrt(y)")
    point = {"x": np.asarray(2.0), "y": np.asarray(0.0)}
    for mode in (reverse, forward):
        grad = mode.gradient(g, point, ["x", "y"])
        assert float(grad["x"]) == 0.0 and float(grad["y"]) == math.inf, mode.__name__
    # numeric zero: sqrt(x**2) at 0 is 0 · ∞ = nan in both modes, alike
    g = parse("sqrt(x**2)")
    for mode in (reverse, forward):
        assert math.isnan(float(mode.gradient(g, {"x": np.asarray(0.0)}, ["x"])["x"])), mode.__name__


def test_registry_is_the_one_list_of_methods() -> None:
    assert METHODS == ("reverse", "forward", "symbolic", "central", "richardson", "complex")
    assert DEFAULT_METHODS == ("reverse", "forward", "symbolic", "central")
    assert {m.kind for m in REGISTRY.values()} == {"ad", "symbolic", "finite-difference", "claim"}
    assert "claim" not in METHODS  # a claim joins by itself, with --expect
    assert not any(m.can_reference for m in REGISTRY.values() if m.kind == "ad")


# --------------------------------------------------------------------------------------------
# The verdict at the edges: each reproduction of the issue
# --------------------------------------------------------------------------------------------


def test_straddling_finite_difference_is_unreliable_not_a_pass() -> None:
    code, data = as_json("relu(x)", "--at", "x=1e-6")
    assert code == 0 and data["verdict"] == "pass"
    assert status(data, "central") == {"x": "unreliable"}
    assert status(data, "reverse") == {"x": "pass"}


def test_only_an_unreliable_method_is_inconclusive() -> None:
    code, data = as_json("abs(x)", "--at", "x=1e-6", "--methods", "central")
    assert code == 3 and data["verdict"] == "inconclusive" and data["ok"] is False
    assert status(data, "central") == {"x": "unreliable"}


def test_a_finite_difference_with_a_huge_estimate_never_passes() -> None:
    # 1e-3*(cosh(x) - sinh(x)) = 1e-3 e^-x cancels catastrophically at x = 20 in float64:
    # central's estimate says it knows nothing (unreliable, not ✓); the AD values (0 against
    # -2.06e-12) are as right as float64 can compute this formula: within its rounding response
    # (≈ 2e-10), said so with ≈ and a note
    code, data = as_json("1e-3*(cosh(x)-sinh(x))", "--at", "x=20")
    assert status(data, "central") == {"x": "unreliable"}
    assert status(data, "reverse") == {"x": "pass"}
    reasons = next(m for m in data["methods"] if m["name"] == "reverse")["summary"]["x"]["reasons"]
    assert "float rounding" in reasons["pass"]
    assert code == 0
    # the same cancellation next to a well-conditioned variable: σ is per variable, so the
    # small partial is still judged on its own scale (central stays unreliable, not ✓)
    code, data = as_json("x + 1e-3*(cosh(y)-sinh(y))", "--at", "x=1,y=20")
    assert status(data, "central") == {"x": "pass", "y": "unreliable"}


def test_rounding_response_does_not_hide_a_wrong_rule(monkeypatch) -> None:
    # a pow partial 0.1% off, on a small partial next to a large one: caught
    good = RULES["pow"]
    wrong = Rule(good.value, (lambda o, a, b: good.partials[0](o, a, b) * 1.001, good.partials[1]))
    monkeypatch.setitem(RULES, "pow", wrong)
    report = check("1000*x + y**2", {"x": 1.0, "y": 1e-4}, methods=["reverse", "central"])
    assert report.method("reverse").status == {"x": "pass", "y": "fail"}
    assert report.verdict == "fail"


def test_x_to_the_y_at_zero_passes_and_says_sympy_is_undefined() -> None:
    code, data = as_json("x**y", "--at", "x=0,y=2")
    assert code == 0 and data["verdict"] == "pass"
    for m in ("reverse", "forward"):
        got = next(e for e in data["methods"] if e["name"] == m)
        assert got["gradient"] == {"x": 0.0, "y": 0.0} and got["cells"] == {"x": "pass", "y": "pass"}
    sym = next(e for e in data["methods"] if e["name"] == "symbolic")
    assert sym["cells"] == {"x": "not-run", "y": "not-run"}
    assert "divides by zero" in sym["summary"]["x"]["reasons"]["not-run"]
    assert data["reference"] != "exact"
    assert set(data["reference_source"].values()) <= {"complex", "richardson"}


def test_undefined_partial_cannot_be_judged_not_a_disagreement() -> None:
    # (-2)**y is undefined for y near 3 except at integers: ∂f/∂y does not exist
    code, data = as_json("x**y", "--at", "x=-2,y=3")
    assert code == 0 and data["verdict"] == "pass"
    assert status(data, "reverse") == {"x": "pass", "y": "cannot-judge"}
    assert any(d["kind"] == "no-reference" and "undefined on both sides" in d["message"]
               for d in data["diagnostics"])


def test_zero_times_infinity_is_explained_and_the_corner_found() -> None:
    result = run("sqrt(x**2)", "--at", "x=0")
    assert result.exit_code == 0, result.output
    code, data = as_json("sqrt(x**2)", "--at", "x=0")
    assert status(data, "reverse") == {"x": "nondifferentiable"}
    assert status(data, "forward") == {"x": "nondifferentiable"}
    reason = next(e for e in data["methods"] if e["name"] == "reverse")["summary"]["x"]["reasons"]
    assert "0 · ∞ in sqrt(u) at u = 0" in reason["nondifferentiable"]
    assert data["one_sided"] == {"x": {"left": -1.0, "right": 1.0}}
    assert run("sqrt(x**2)", "--at", "x=0", "--strict").exit_code == 1


def test_broken_rule_is_blamed_on_the_ad_not_on_central_when_sympy_is_out_of_budget(monkeypatch) -> None:
    good = RULES["sin"]
    monkeypatch.setitem(RULES, "sin", Rule(good.value, (lambda o, x: -np.cos(x),)))
    monkeypatch.setattr(check_module, "SYMBOLIC_MAX_NODES", 1)  # SymPy skipped: "too large"
    report = check("sin(x)*x", {"x": 0.7})
    assert report.reference in ("complex", "richardson")  # never forward
    assert report.verdict == "fail"
    assert report.method("reverse").status == {"x": "fail"}
    assert report.method("forward").status == {"x": "fail"}
    assert report.method("central").status == {"x": "pass"}
    assert any(d.kind == "symbolic-skipped" for d in report.diagnostics)


def test_a_finite_difference_reference_widens_by_its_own_estimate() -> None:
    report = check("exp(x)*sin(x)", {"x": 0.7}, reference="central")
    assert report.reference == "central" and report.verdict == "pass"
    assert report.method("reverse").status == {"x": "pass"}


def test_the_reference_is_never_an_ad_method() -> None:
    result = run("x**2", "--at", "x=3", "--reference", "reverse")
    assert result.exit_code == 2 and "never an AD method" in result.output


def test_no_method_could_run_is_inconclusive_everywhere(tmp_path) -> None:
    junit = tmp_path / "r.xml"
    code, data = as_json("abs(x)", "--at", "x=0.5", "--methods", "complex", "--junit", str(junit))
    assert code == 3 and data["verdict"] == "inconclusive" and data["ok"] is False
    root = ET.parse(junit).getroot()
    assert root.find("testsuite").get("errors") == "1"
    text = run("abs(x)", "--at", "x=0.5", "--methods", "complex")
    assert text.exit_code == 3 and "inconclusive" in text.output.splitlines()[-1]


@pytest.mark.parametrize(("expr", "at"), [("sqrt(x)", "x=0"), ("acos(x)", "x=1")])
def test_infinite_slope_is_nondifferentiable(expr: str, at: str) -> None:
    code, data = as_json(expr, "--at", at)
    assert code == 0 and data["verdict"] == "pass"
    assert status(data, "reverse") == {"x": "nondifferentiable"}
    assert any(d["kind"] == "nondifferentiable" and "infinite slope" in d["message"]
               for d in data["diagnostics"])
    assert run(expr, "--at", at, "--strict").exit_code == 1


def test_strict_kink_failure_says_what() -> None:
    result = run("relu(x)*y", "--at", "x=0,y=2", "--strict")
    assert result.exit_code == 1
    verdict = result.output.strip().splitlines()[-1]
    assert verdict.startswith("✗") and not verdict.rstrip().endswith(":")
    assert "not differentiable" in verdict or "kink" in verdict


def test_timeout_below_symbolic_timeout_skips_sympy_instead_of_failing() -> None:
    # nested 13 times, SymPy needs well over 30 s for this (benchmarks/sympy_scaling.py)
    expr = "x"
    for _ in range(13):
        expr = f"cos(sin(({expr})**2)+3*({expr})**2)"
    started = time.monotonic()
    result = run(expr, "--at", "x=0.3", "--timeout", "4", "--symbolic-timeout", "10")
    assert time.monotonic() - started < 8
    assert result.exit_code == 0, result.output
    assert "symbolic-skipped" in result.output


def test_zero_to_a_positive_power_has_derivative_zero() -> None:
    # autograd's own test: 0**y at y = 0.4556, f ≡ 0 for y > 0
    code, data = as_json("0**y", "--at", "y=0.4556")
    assert code == 0
    for m in ("reverse", "forward"):
        got = next(e for e in data["methods"] if e["name"] == m)
        assert got["gradient"] == {"y": 0.0} and got["cells"] == {"y": "pass"}


def test_ad_convention_at_a_tie_is_named_not_a_failure() -> None:
    # min(x, 1) + relu(x - 1) is x: f' = 1 from both sides at x = 1, the AD gives 0.5
    code, data = as_json("min(x, 1) + relu(x - 1)", "--at", "x=1")
    assert code == 0
    assert status(data, "reverse") == {"x": "convention"}
    assert status(data, "central") == {"x": "pass"}
    conv = [d for d in data["diagnostics"] if d["kind"] == "ad-convention"]
    assert conv and "f′ = 1 from both sides" in conv[0]["message"]
    assert run("min(x, 1) + relu(x - 1)", "--at", "x=1", "--strict").exit_code == 1


def test_tiny_but_wrong_values_never_pass() -> None:
    # symbolic's float64 value underflows to 0 against a true 9.86e-305: never ✓; it is SymPy's
    # float64 evaluation of the exact reference's own formula that is off, so the cell is
    # unreliable (with that reason), and the correct AD passes
    report = check("sigmoid(x)", {"x": -700})
    assert report.method("symbolic").status == {"x": "unreliable"}
    assert "float64" in report.method("symbolic").unreliable["x"]
    assert report.method("reverse").status == {"x": "pass"} and report.verdict == "pass"


def test_a_finite_difference_fooled_by_a_hidden_kink_is_unreliable_not_a_failure() -> None:
    # sqrt(x**2) = |x| has a kink at 0 that no primitive announces; central's step straddles it
    report = check("sqrt(x**2)", {"x": -1.1340875048379265e-11})
    assert report.method("central").status == {"x": "unreliable"}
    assert report.method("reverse").status == {"x": "pass"} and report.verdict == "pass"


def test_absolute_floor_scales_with_the_gradient(monkeypatch) -> None:
    # a sin rule off by 1e-6 relative, in a problem whose gradient is ~1e-20: caught
    good = RULES["sin"]
    monkeypatch.setitem(RULES, "sin", Rule(good.value, (lambda o, x: np.cos(x) * (1 + 1e-6),)))
    report = check("1e-20*sin(x)", {"x": 0.5}, methods=["reverse", "central"], reference="complex")
    assert report.method("reverse").status == {"x": "fail"}
    monkeypatch.setitem(RULES, "sin", good)
    assert check("1e-20*sin(x)", {"x": 0.5}, methods=["reverse"], reference="complex").ok


# --------------------------------------------------------------------------------------------
# Many points
# --------------------------------------------------------------------------------------------

CARD = "cos(sin(x**2)+3*x**2)"


def test_card_formula_at_100_sampled_points_passes() -> None:
    report = check(CARD, sample=100, seed=7)
    assert report.size == 100 and report.verdict == "pass"
    for m in report.methods:
        assert m.count("x", (0,)) == 100, m.name  # every cell passes
    assert report.reference == "exact" and len(report.exact_text) == 100


def test_planted_wrong_rule_fails_exactly_where_it_is_wrong(monkeypatch) -> None:
    # sin's partial with the wrong sign where its argument exceeds 1: in the card formula,
    # sin(x**2) is wrong exactly where |x| > 1
    good = RULES["sin"]
    wrong = Rule(good.value, (lambda o, x: np.where(x > 1, -np.cos(x), np.cos(x)),))
    monkeypatch.setitem(RULES, "sin", wrong)
    monkeypatch.setattr(check_module, "SYMBOLIC_MAX_NODES", 1)  # SymPy skipped: "too large"
    report = check(CARD, sample=100, seed=11)
    assert any(d.kind == "symbolic-skipped" for d in report.diagnostics)
    assert report.reference == "complex" and report.verdict == "fail"
    x = report.points["x"]
    wrong = np.abs(x) > 1
    assert 20 < wrong.sum() < 80
    for name in ("reverse", "forward"):
        failed = report.method(name).cells.code["x"] == 1
        assert (failed == wrong).all(), name
    assert report.method("central").ok is True
    result = run(CARD, "--sample", "100", "--seed", "11")
    verdict = " ".join(result.output[result.output.rindex("✗"):].split())  # unwrap the lines
    assert "reverse, forward on x" in verdict and "central" not in verdict
    assert "--at x=" in verdict and "of 100 points" in verdict


def test_seed_reproduces_the_points_and_is_printed() -> None:
    a = check("x*y", sample=20, seed=5, methods=["reverse"], reference="complex")
    b = check("x*y", sample=20, seed=5, methods=["reverse"], reference="complex")
    c = check("x*y", sample=20, seed=6, methods=["reverse"], reference="complex")
    assert (a.points["x"] == b.points["x"]).all() and (a.points["y"] == b.points["y"]).all()
    assert not (a.points["x"] == c.points["x"]).all()
    code, data = as_json("x*y", "--sample", "20", "--methods", "reverse", "--reference", "complex")
    assert code == 0 and isinstance(data["sample"]["seed"], int)
    assert "--seed" in run("x*y", "--sample", "5", "--methods", "reverse").output


def test_stratified_draws_hit_every_part_of_the_box() -> None:
    report = check("x", sample=50, seed=1, domain={"x": (0.0, 5.0)}, methods=["reverse"],
                   reference="complex")
    strata = np.floor(report.points["x"] / 0.1).astype(int)
    assert sorted(strata) == list(range(50))


def test_undefined_draws_are_redrawn_and_counted() -> None:
    report = check("log(x)", sample=50, seed=3, domain={"x": (-1.0, 1.0)}, methods=["reverse"],
                   reference="complex")
    assert report.size == 50 and (report.points["x"] > 0).all()
    assert report.sample is not None and report.sample.redrawn >= 10 and report.sample.dropped == 0
    note = next(d for d in report.diagnostics if d.kind == "redrawn-points")
    assert "log(u)" in note.message


def test_a_domain_where_f_is_undefined_everywhere_is_bad_input() -> None:
    result = run("sqrt(x-5)", "--sample", "10", "--seed", "1")
    assert result.exit_code == 2
    assert "sqrt(u)" in result.output and "--domain" in result.output


def test_many_points_through_the_python_api() -> None:
    x = np.array([1.0, -2.0, 0.5])
    y = np.array([3.0, 4.0, -1.0])
    report = check("x*y", {"x": x, "y": y}, methods=["reverse", "forward", "central"], reference="complex")
    assert report.batched and report.size == 3 and report.ok
    assert (report.method("reverse").gradient["x"] == y).all()
    assert (report.method("forward").gradient["y"] == x).all()
    assert report.value.tolist() == [3.0, -8.0, -0.5]


def test_exact_reference_past_the_threshold_runs_at_failing_and_worst_points(monkeypatch) -> None:
    good = RULES["sin"]
    wrong = Rule(good.value, (lambda o, x: np.where(x > 3.9, -np.cos(x), np.cos(x)),))
    monkeypatch.setitem(RULES, "sin", wrong)
    report = check(CARD, sample=150, seed=2)
    assert report.verdict == "fail"
    assert 0 < len(report.exact_text) < 150
    failing = np.flatnonzero(report.method("reverse").cells.code["x"] == 1)
    assert len(failing) and all(int(k) in report.exact_text for k in failing[:20])
    assert (report.reference_source["x"][failing[:20]] == "exact").all()


def test_json_many_points_summary_and_per_point_arrays() -> None:
    code, data = as_json(CARD, "--sample", "30", "--seed", "4", "--per-point")
    assert code == 0 and data["points"] == 30 and data["point"] is None
    rev = next(m for m in data["methods"] if m["name"] == "reverse")
    assert rev["summary"]["x"]["pass"] == 30 and rev["summary"]["x"]["fail"] == 0
    assert rev["summary"]["x"]["worst_at"].startswith("x=")
    assert len(rev["per_point"]["gradient"]["x"]) == 30
    assert len(data["per_point"]["points"]["x"]) == 30


def test_a_check_file_with_sample_draws_every_variable() -> None:
    code, data = as_json("--file", "sample_expressions/sigmoid_neuron.toml", "--sample", "20", "--seed", "2")
    assert code == 0 and data["points"] == 20
    assert set(data["sample"]["domain"]) == {"w0", "w1", "w2", "x0", "x1"}


# --------------------------------------------------------------------------------------------
# Found by the review of Core v2 (each was wrong before its fix)
# --------------------------------------------------------------------------------------------


def test_exact_reference_resolves_cancellation_below_its_first_precisions() -> None:
    # SymPy's gelu' is 1/2 + erf(x/√2)/2 + ...: at x = -38 the first two cancel to 1e-318, which
    # 45 and 90 digits both round to an exact 0; the exact value is -3.7469165615e-316
    report = check("gelu(x)", {"x": -38.184257366152885})
    assert report.exact is not None and report.exact["x"].startswith("-3.74691656151899")
    assert report.method("reverse").status == {"x": "pass"}


def test_correct_ad_passes_past_the_exact_threshold_where_sympy_float_underflows() -> None:
    report = check("sigmoid(x)", sample=1000, seed=1, domain={"x": (-700.0, -650.0)})
    assert report.verdict == "pass"
    for name in ("reverse", "forward"):
        assert report.method(name).count("x", (0,)) == 1000, name


def test_a_derivative_beyond_float64_is_right_as_an_infinity() -> None:
    code, data = as_json("1/x", "--at", "x=1e-160")
    assert code == 0 and status(data, "reverse") == {"x": "pass"}
    assert any(d["kind"] == "overflow" and "1.0e+320" in d["message"] for d in data["diagnostics"])


@pytest.mark.parametrize(("expr", "explained"), [
    ("sqrt(x**4)", "0 · ∞ in sqrt(u) at u = 0"),
    ("(x-x)**y", "∞ - ∞"),
])
def test_chain_rule_breakdowns_are_explained(expr: str, explained: str) -> None:
    at = "x=0" if "y" not in expr else "x=1,y=0.5"
    result = run(expr, "--at", at)
    assert result.exit_code == 1  # f is differentiable there (f' = 0), the AD gives nan
    assert explained in " ".join(result.output.split())


def test_sampling_refuses_a_box_wider_than_floats() -> None:
    result = run("x", "--sample", "5", "--seed", "1", "--domain", "x=-1e308:1e308")
    assert result.exit_code == 2 and "narrower" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args", [
    ("x*y", "--at", "x=1,y=2", "--per-point"),
    ("x*y", "--at", "x=1,y=2", "--sample", "5"),
    ("x*y", "--at", "x=1", "--sample", "5", "--domain", "x=0:1"),
])
def test_options_that_would_be_silently_ignored_are_refused(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize("options", [
    {"step": np.array([1e-3, 1e-3])}, {"sample": 2.5}, {"sample": 3, "seed": -1},
    {"sample": 3, "domain": {"x": (0.0, math.inf)}}, {"atol": math.inf}, {"rtol": math.nan},
    {"timeout": 0}, {"limits": None},
])
def test_api_options_are_checked_like_flags(options: dict) -> None:
    from gradcheck_cli import GradcheckError

    point = {} if "sample" in options else {"x": 1.0, "y": 2.0}
    with pytest.raises(GradcheckError) as err:
        check("x*y", point, **options)
    assert err.value.kind in ("usage", "bad-value")


def test_concurrent_checks_do_not_share_a_worker() -> None:
    import threading

    results: dict[int, object] = {}

    def one(k: int) -> None:
        try:
            results[k] = check(f"sin(x)*{k + 1}", {"x": 1.0}).method("reverse").status
        except Exception as exc:  # noqa: BLE001 - the test reports any failure below
            results[k] = exc

    threads = [threading.Thread(target=one, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == {"x": "pass"} for r in results.values()), results


def test_bad_input_does_not_cost_the_worker() -> None:
    import threading

    from gradcheck_cli import GradcheckError, worker

    def ours() -> dict[tuple, int]:  # this thread's workers (each thread has its own)
        return {k: w.proc.pid for k, w in worker._WORKERS.items()
                if w.alive and k[2] == threading.get_ident()}

    check("sin(x)", {"x": 1.0})
    before = ours()
    with pytest.raises(GradcheckError):
        check("log(x)", {"x": -1.0})
    check("sin(x)", {"x": 2.0})
    assert before and before == ours()
