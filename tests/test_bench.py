"""The benchmark cannot rot: every case's correctness check at a small m, its bookkeeping, its
command line and the README's tables. No timing is asserted anywhere."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import fastbp
from bench import cli, hotloops, machine, probe, report
from bench import timing as bench_timing
from bench.cases import CASES, Case, flops_per_example, make_problem
from bench.implementations import (
    IMPLEMENTATIONS,
    Implementation,
    Prepared,
    _sklearn_model,
    check,
    from_sklearn_layout,
    to_sklearn_layout,
)
from bench.measure import measure_problem
from bench.report import readme_sources, render
from bench.timing import thread_count, time_calls

import reference

ROOT = Path(__file__).resolve().parents[1]
SMALL_M = 40  # a full tile of examples and a partial one
DTYPES = ["float64", "float32"]
PEERS = [key for key, impl in IMPLEMENTATIONS.items() if impl.is_peer]
CHECKED = ["literal", *PEERS]  # every implementation the benchmark checks against fastbp


def small_problem(name, dtype):
    case = CASES[name]
    return make_problem(case, dtype, min(case.m, SMALL_M))


def test_case_table_is_the_issues():
    cases = {name: (c.layer_sizes, c.m, c.activation, c.output) for name, c in CASES.items()}
    assert cases == {
        "tiny": ((2, 4, 1), 4, "sigmoid", "sigmoid"),
        "xor": ((2, 2, 1), 4, "sigmoid", "sigmoid"),
        "digits": ((64, 32, 10), 1797, "sigmoid", "sigmoid"),
        "ex4": ((400, 25, 10), 5000, "sigmoid", "sigmoid"),
        "deep": ((100, 100, 100, 100, 10), 10000, "sigmoid", "sigmoid"),
        "mnist": ((784, 128, 10), 20000, "sigmoid", "sigmoid"),
        "wide": ((784, 512, 512, 10), 5000, "sigmoid", "sigmoid"),
        "mnist-relu": ((784, 128, 10), 20000, "relu", "softmax"),
        "tanh-regression": ((64, 64, 64, 1), 20000, "tanh", "identity"),
    }
    assert CASES["mnist"].network_keywords == {}  # the defaults: older fastbp runs these cases
    assert CASES["mnist-relu"].network_keywords == {"activation": "relu", "output": "softmax"}


def test_every_case_has_a_speed_target():
    """The sigmoid cases have their own; the others the nearest sigmoid case's (README)."""
    for name, case in CASES.items():
        if case.is_sigmoid:
            assert name in report.TARGET_RATIO
            assert name not in report.NEAREST_SIGMOID_CASE
        else:
            assert CASES[report.NEAREST_SIGMOID_CASE[name]].is_sigmoid


def test_problem_data():
    p = make_problem(CASES["digits"], np.float32, 100)
    again = make_problem(CASES["digits"], np.float32, 100)
    assert p.X.dtype == p.theta.dtype == np.float32
    assert p.X.shape == (100, 64)
    assert 0 <= p.X.min()
    assert p.X.max() <= 1
    assert set(np.unique(p.y)) <= set(range(10))
    assert np.array_equal(p.X, again.X)
    assert np.array_equal(p.theta, again.theta)
    assert np.count_nonzero(p.theta != p.theta_alt) == 1
    assert np.array_equal(p.targets().argmax(axis=1), p.y)
    tiny = make_problem(CASES["tiny"])
    assert set(np.unique(tiny.y)) <= {0, 1}
    assert tiny.targets().shape == (4, 1)
    with pytest.raises(TypeError, match="float64 or float32"):
        make_problem(CASES["tiny"], np.int32)


def test_regression_targets_are_float_and_deterministic():
    """The identity output's targets: a smooth function of X plus noise, in the dtype, (m,) for
    one output; the first rows are the same whatever m, like X."""
    case = CASES["tanh-regression"]
    p = make_problem(case, np.float32, 100)
    whole = make_problem(case, np.float32)
    assert p.y.dtype == np.float32
    assert p.y.shape == (100,)
    assert p.targets().shape == (100, 1)
    assert np.array_equal(p.targets()[:, 0], p.y)
    assert np.array_equal(p.X, whole.X[:100])
    assert np.array_equal(p.y, whole.y[:100])
    assert np.array_equal(p.y, make_problem(case, np.float32, 100).y)
    assert 0.5 < whole.y.std() < 1.0
    assert np.abs(whole.y).max() < 2
    assert not np.array_equal(whole.y, np.round(whole.y))
    softmax = make_problem(CASES["mnist-relu"], np.float64, 100)
    assert softmax.y.dtype == np.int64
    assert np.array_equal(softmax.targets().argmax(axis=1), softmax.y)


def test_flops_per_example_by_hand():
    # (2, 4, 1): P = 4·3 + 1·5 = 17; forward 2P, Δ 2P, δ^(2) = Θ^(2)ᵀ δ^(3): 2·1·4.
    assert flops_per_example((2, 4, 1)) == 4 * 17 + 2 * 4
    # (3, 5, 4, 2): P = 5·4 + 4·6 + 2·5 = 54; δ recurrence 2·(4·5 + 2·4).
    assert flops_per_example((3, 5, 4, 2)) == 4 * 54 + 2 * (20 + 8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_fastbp_matches_the_plain_reference_on_every_case(name, dtype):
    """The bench checks peers against fastbp: fastbp itself is checked against the reference."""
    p = small_problem(name, dtype)
    functions = {"activation": p.activation, "output": p.output}
    J, grad = fastbp.cost_and_grad(p.theta, p.X, p.y, p.layer_sizes, p.lam, **functions)
    J_ref, grad_ref = reference.cost_and_grad(p.theta, p.X, p.y, p.layer_sizes, p.lam, **functions)
    tolerance = {"float64": 1e-12, "float32": 1e-4}[dtype]
    assert abs(J - J_ref) / abs(J_ref) <= tolerance
    assert reference.max_rel(grad, grad_ref) <= tolerance


@pytest.mark.parametrize("peer", CHECKED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_every_peer_agrees_with_fastbp_on_every_case(name, dtype, peer):
    """The benchmark's own check, as it runs before timing (NumPy and the literal kernel always;
    others if installed)."""
    impl = IMPLEMENTATIONS[peer]
    if impl.requires:
        pytest.importorskip(impl.requires)
    p = small_problem(name, dtype)
    reference_result = IMPLEMENTATIONS["fastbp"].prepare(p).call(p.theta)
    agreement = check(impl.prepare(p), reference_result, p.dtype)
    assert agreement.ok, agreement


def test_sklearn_layout_is_sklearns_own():
    pytest.importorskip("sklearn")
    from sklearn.neural_network import _multilayer_perceptron

    sizes = (3, 5, 4, 2)
    theta = np.arange(fastbp.n_params(sizes), dtype=np.float64)
    Thetas = fastbp.unpack(theta, sizes)
    packed = _multilayer_perceptron._pack([T[:, 1:].T for T in Thetas], [T[:, 0] for T in Thetas])
    assert np.array_equal(to_sklearn_layout(theta, sizes), packed)
    assert np.array_equal(from_sklearn_layout(packed, sizes), theta)
    with pytest.raises(ValueError, match="length"):
        from_sklearn_layout(packed[:-1], sizes)


def test_sklearn_peer_refuses_a_different_loss():
    """MLPClassifier has no softmax output for 2 classes; MLPRegressor's loss averages over
    outputs too, so it is not ours for more than one."""
    pytest.importorskip("sklearn")
    two_classes = Case("two", (3, 4, 2), 10, activation="relu", output="softmax")
    two_outputs = Case("two", (3, 4, 2), 10, activation="tanh", output="identity")
    with pytest.raises(ValueError, match="3 or more classes"):
        _sklearn_model(make_problem(two_classes))
    with pytest.raises(ValueError, match="one output"):
        _sklearn_model(make_problem(two_outputs))


def test_cases_with_other_functions_are_reported_with_them():
    """The tables name a case's activation and output, and its nearest sigmoid case's target."""
    implementations = [IMPLEMENTATIONS["fastbp"], IMPLEMENTATIONS["numpy"]]
    records = [
        record
        for name in ("mnist", "mnist-relu", "tanh-regression")
        for record in measure_problem(small_problem(name, "float64"), implementations, 0.01, 1.0)
    ]
    assert {(r["activation"], r["output"]) for r in records} == {
        ("sigmoid", "sigmoid"),
        ("relu", "softmax"),
        ("tanh", "identity"),
    }
    results = {
        "implementations": [
            {"key": impl.key, "name": impl.name, "is_peer": impl.is_peer}
            for impl in implementations
        ],
        "results": records,
    }
    summary = "\n".join(report._summary(results))
    assert "| mnist | 784-128-10 | 40 | float64 |" in summary
    assert "| mnist-relu | 784-128-10 relu/softmax | 40 | float64 |" in summary
    assert "| tanh-regression | 64-64-64-1 tanh/identity | 40 | float64 |" in summary
    targets = "\n".join(report._targets(results))
    assert "| mnist | float64 | " in targets
    assert "| ≤ 0.8 (as mnist) |" in targets
    assert "| ≤ 0.75 (as deep) |" in targets


def test_timing_never_calls_twice_with_the_same_input():
    """fastbp.Objective caches its last θ: consecutive timed calls must differ."""
    seen = []
    timing = time_calls(seen.append, ("a", "b"), seconds=0.02)
    assert len(seen) >= timing.warm_up_calls + timing.samples * timing.batch
    assert all(x != y for x, y in itertools.pairwise(seen))


def test_rounds_interleave_the_implementations_and_keep_the_best_round(monkeypatch):
    seen = []

    def failing(x):
        seen.append("f")
        if len([s for s in seen if s == "f"]) > 3:
            raise RuntimeError("out of memory")

    targets = [
        (lambda x: seen.append("a"), (1, 2)),
        (failing, (1, 2)),
        (lambda x: seen.append("b"), (1, 2)),
    ]
    a, f, b = bench_timing.time_in_rounds(targets, seconds=0.03, rounds=3)
    runs = [key for key, _ in itertools.groupby(seen)]
    assert runs[:3] == ["a", "f", "b"]
    assert runs[3:] == ["a", "b", "a", "b"]  # the failing target is timed no further
    assert isinstance(f, RuntimeError)
    for result in (a, b):
        assert len(result.round_medians) == 3
        assert result.median == min(result.round_medians)
    monkeypatch.setattr(bench_timing, "ONE_ROUND_ABOVE", 0.0)  # every call "slow": one round
    (slow,) = bench_timing.time_in_rounds([(lambda x: None, (1,))], seconds=0.01)
    assert len(slow.round_medians) == 1
    assert slow.samples >= bench_timing.MIN_SAMPLES


def _fake(key, prepare, requires=None):
    return Implementation(key, key.title(), True, requires, "a test double", prepare)


def _off_by(scale):
    def prepare(problem):
        fastbp_call = IMPLEMENTATIONS["fastbp"].prepare(problem).call

        def call(theta):
            J, grad = fastbp_call(theta)
            return J, grad * scale

        return Prepared(call, problem.theta, problem.theta_alt)

    return prepare


def _raises(problem):
    raise RuntimeError("no luck")


def test_peers_that_disagree_fail_or_are_missing_are_reported_not_timed():
    p = make_problem(CASES["xor"])
    records = measure_problem(
        p,
        [
            IMPLEMENTATIONS["fastbp"],
            _fake("close", _off_by(1 + 1e-12)),
            _fake("wrong", _off_by(1.001)),
            _fake("broken", _raises),
            _fake("absent", _raises, requires="no_such_module_for_fastbp_bench"),
        ],
        seconds=0.01,
        peak_gflops=1.0,
    )
    by_key = {r["implementation"]: r for r in records}
    assert by_key["fastbp"]["status"] == by_key["close"]["status"] == "timed"
    assert by_key["close"]["ms"] > 0
    assert by_key["close"]["fastbp_over_this"] > 0
    assert by_key["fastbp"]["fastbp_over_this"] == 1
    wrong = by_key["wrong"]
    assert wrong["status"] == "disagrees"
    assert wrong["ms"] is None
    assert wrong["timing"] is None
    assert wrong["grad_error"] == pytest.approx(1e-3, rel=1e-6)
    assert by_key["broken"]["status"] == "failed"
    assert "no luck" in by_key["broken"]["note"]
    absent = by_key["absent"]
    assert absent["status"] == "missing"
    assert "not installed" in absent["note"]


def test_thread_count_is_restored():
    import numba

    before = numba.get_num_threads()
    with thread_count(1) as threads:
        assert threads["numba"] == 1
        assert threads["cpu_affinity"] == 1
    assert numba.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"), thread_count(10**6):
        pass


def test_command_writes_results_and_tables(tmp_path, capsys):
    argv = ["--cases", "tiny", "xor", "--dtype", "float32", "--peers", "numpy"]
    argv += ["--seconds", "0.01", "--skip", "startup", "memory", "scaling"]
    assert cli.main([*argv, "--output-dir", str(tmp_path)]) == 0
    (json_path,) = tmp_path.glob("*.json")
    results = json.loads(json_path.read_text())
    assert [(r["case"], r["implementation"], r["status"]) for r in results["results"]] == [
        ("tiny", "fastbp", "timed"),
        ("tiny", "literal", "timed"),
        ("tiny", "numpy", "timed"),
        ("xor", "fastbp", "timed"),
        ("xor", "literal", "timed"),
        ("xor", "numpy", "timed"),
    ]
    assert results["settings"]["threads"] >= 1
    assert results["gemm_peak"]["float32"]["gflops"] > 0
    if machine.cpu_jiffies() is not None:  # Linux: how much time the hypervisor took, if any
        assert 0 <= results["cpu_stolen_percent"] <= 100
        assert all(0 <= r["cpu_stolen_percent"] <= 100 for r in results["results"])
    markdown = json_path.with_suffix(".md").read_text()
    assert markdown in capsys.readouterr().out
    assert "| tiny | 2-4-1 | 4 | float32 |" in markdown
    assert "| tiny | float32 |" in markdown.split("### Speed targets")[1]  # marked met or not
    # Rendering alone gives the same tables.
    assert cli.main(["--from-json", str(json_path)]) == 0
    assert capsys.readouterr().out.strip() == markdown.strip()


def test_stolen_time_is_read_from_proc_stat():
    """The aggregate "cpu" line's eighth field is steal; the first eight are all the time."""
    before = machine.cpu_jiffies("cpu  100 5 50 800 10 0 5 30 7 0\ncpu0 50 2 25 400 5 0 2 15 3 0\n")
    after = machine.cpu_jiffies("cpu  160 5 60 880 10 0 5 80 9 0\n")
    assert before == (30, 1000)
    assert after == (80, 1200)
    assert machine.stolen_percent(before, after) == pytest.approx(25.0)
    assert machine.stolen_percent(before, None) is None
    assert machine.stolen_percent(after, after) is None
    assert machine.cpu_jiffies("intr 1 2 3\n") is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cases", "nosuch"], "invalid choice"),
        (["--threads", "0"], "--threads"),
        (["--seconds", "-1"], "positive"),
        (["--quick", "--write-readme"], "full run"),
        (["--from-json", "no/such/file.json"], "cannot read"),
    ],
)
def test_bad_arguments_exit_cleanly(argv, message):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_readme_tables_are_rendered_from_the_results_it_names():
    """bench/README.md's tables are exactly what --write-readme makes of the JSON they name."""
    readme = (ROOT / "bench" / "README.md").read_text()
    sources = readme_sources(readme)
    assert sources
    for isa, source in sources.items():
        results = json.loads((ROOT / "bench" / source).read_text())
        assert results.get("kernels", {}).get("isa", "") == isa
        assert not results["settings"]["quick"]
        # Every case of bench/cases.py, except cases added since the run (the AVX2 run predates
        # mnist-relu and tanh-regression).
        assert set(results["settings"]["cases"]) <= set(CASES)
        assert {name for name, c in CASES.items() if c.is_sigmoid} <= set(
            results["settings"]["cases"]
        )
        assert results["settings"]["dtypes"] == DTYPES
        plot = cli.PLOT.format(isa=isa) if results.get("scaling") else None
        section = render(results, plot=plot)
        assert section.strip() in readme
        assert plot is None or (ROOT / "bench" / plot).exists()
    assert {r["implementation"] for r in results["results"]} >= {"fastbp", *PEERS}


def test_memory_probe_sees_each_calls_buffers():
    """NumPy's A^(1) = [1 X] alone is m × (s_1 + 1): the probe must see at least that."""
    (point,) = probe.memory_profile([3000], "float64", threads=1)
    s_1 = CASES["ex4"].layer_sizes[0]
    assert point["numpy_extra_bytes"] >= 3000 * (s_1 + 1) * 8
    assert 0 < point["fastbp_extra_bytes"] < point["numpy_extra_bytes"]


def test_startup_probe_reports_every_first_call(capsys):
    probe.main(["startup", "float64"])
    result = json.loads(capsys.readouterr().out)
    assert result["import_s"] >= 0
    assert set(result["float64"]) == {"serial", "parallel"}
    assert all(v["first_call_s"] > 0 for v in result["float64"].values())


def test_scaling_problems_share_the_case_data():
    """A case at another m is the same network and θ: the scaling sweep times the same model."""
    base = CASES["ex4"]
    a = make_problem(base, np.float64, 100)
    b = make_problem(Case(base.name, base.layer_sizes, 300), np.float64)
    assert np.array_equal(a.theta, b.theta)


def test_hot_ranges_group_samples_closer_than_the_gap():
    samples = {0x100: 1, 0x140: 2, 0x400: 5, 0x420: 1, 0x900: 1}
    assert hotloops.hot_ranges(samples, gap=96) == [
        (0x400, 0x420, 6),
        (0x100, 0x140, 3),
        (0x900, 0x900, 1),
    ]


@pytest.mark.skipif(not hotloops.perf_available(), reason="needs perf, allowed to sample")
def test_hotloops_finds_the_product_loops_of_a_call():
    threads_before = numba.get_num_threads()
    result = hotloops.profile("digits", "float64", threads=1, seconds=0.5)
    assert numba.get_num_threads() == threads_before
    assert result["calls"] > 0
    assert result["samples"] > 0
    assert result["jit_share"] > 0.5  # the call runs in numba's compiled code
    assert result["loops"]
    assert 0 < result["product_share"] <= result["jit_share"]
    assert result["product_gflops"] > 0


def test_target_avx2_turns_every_avx512_feature_off(monkeypatch):
    from bench.target import apply_target, target_environment

    assert target_environment("host") == {}
    env = target_environment("avx2")
    features = env["NUMBA_CPU_FEATURES"].split(",")
    assert env["NUMBA_CPU_NAME"]
    assert not [f for f in features if f.startswith("+avx512")]
    environ: dict[str, str] = {}
    monkeypatch.setattr(os, "environ", environ)  # this process's own stays as it is
    apply_target(["--cases", "ex4", "--target", "avx2"])
    assert environ == env


def test_readme_keeps_one_section_per_isa():
    from bench.report import README_END, readme_sources, replace_readme_section

    readme = "# bench\n\n<!-- bench:results old.json -->\nold\n" + README_END + "\n\n## After\n"
    readme = replace_readme_section(readme, "tables A", "a.json", "avx512")  # the legacy one
    assert readme_sources(readme) == {"avx512": "a.json"}
    readme = replace_readme_section(readme, "tables B", "b.json", "avx2")  # a new section
    assert readme_sources(readme) == {"avx512": "a.json", "avx2": "b.json"}
    readme = replace_readme_section(readme, "tables C", "c.json", "avx512")
    assert readme_sources(readme) == {"avx512": "c.json", "avx2": "b.json"}
    assert "tables A" not in readme
    assert readme.index("tables C") < readme.index("tables B") < readme.index("## After")


def test_hessp_bench_checks_the_peers_and_reports_ratios():
    from bench import hessp

    records = hessp.measure("digits", np.dtype(np.float64), seconds=0.05)
    by_name = {record["implementation"]: record for record in records}
    assert {"fastbp gradient", "fastbp hessp", "fastbp gauss-newton"} <= set(by_name)
    assert by_name["fastbp gradient"]["over_gradient"] == 1.0
    for name in ("jax jvp(grad)", "torch double backward"):
        if name in by_name:  # installed: checked against fastbp's H·v before it was timed
            assert by_name[name]["error"] <= 1e-9
    table = hessp.table(records).splitlines()
    assert table[0].startswith("| case | dtype | gradient ms | H·v ms")
    assert table[2].startswith("| digits | float64 |")


def test_second_order_table_and_plot(tmp_path):
    from bench import second_order

    results = [
        {
            "case": "toy",
            "layer_sizes": (2, 3, 1),
            "m": 10,
            "traces": {"L-BFGS-B": [(0.1, 2.0), (0.2, 0.995)], "trust-krylov (H·v)": [(0.5, 0.99)]},
        }
    ]
    rows = second_order.table(results).splitlines()
    assert rows[2] == "| toy | L-BFGS-B | 2 | 0.995 | 0.20 | 0.20 |"  # within 1% of the best
    assert rows[3] == "| toy | trust-krylov (H·v) | 1 | 0.99 | 0.50 | 0.50 |"
    second_order.plot(results, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0
