import json
import statistics

import pytest
import torch

import latentdirs

from latentdirs.cli import main
from latentdirs.directions import DirectionSet
from latentdirs.evaluation.compare import CompareConfig, compare, summarize

TINY = dict(ld_steps=4, batch_size=16, rca_steps=4, gt_train=64, gt_steps=4, gt_eval=200, gt_image_size=16,
            ganspace_samples=200, progress=False)


def test_compare_end_to_end_on_a_tiny_setting(planted, tmp_path):
    methods = ("ld-unit", "sefa", "ganspace", "identity")
    result = compare(planted, k=5, seeds=(0, 1), methods=methods, out_dir=tmp_path, **TINY)
    assert len(result.results) == 8
    for method in methods:
        for seed in (0, 1):
            cell = tmp_path / method / f"seed{seed}"
            assert DirectionSet.load(cell / "directions").num_directions == 5
            scores = json.loads((cell / "result.json").read_text())
            assert {"rca", "mig", "dci_disentanglement", "modularity", "factor_cosine", "find_seconds"} <= set(scores)
    report = result.report.read_text()
    assert "| ld-unit |" in report and "±" in report and "MIG" in report
    assert result.chart.exists() and result.chart.stat().st_size > 1_000
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 8
    # each method is the one named: SeFa's closed form, the coordinate axes, LD trained from the axes
    assert torch.allclose(DirectionSet.load(tmp_path / "sefa" / "seed0" / "directions").matrix,
                          latentdirs.sefa(planted, 5).matrix, atol=1e-5)
    assert torch.equal(DirectionSet.load(tmp_path / "identity" / "seed1" / "directions").matrix, torch.eye(16)[:, :5])
    ld = DirectionSet.load(tmp_path / "ld-unit" / "seed0" / "directions").matrix
    assert not torch.allclose(ld, torch.eye(16)[:, :5], atol=1e-3)
    # the report's RCA and MIG cells are mean ± sample std over the seeds' result files
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    header = next(line for line in report.splitlines() if line.startswith("| method |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    for method in methods:
        line = next(line for line in report.splitlines() if line.startswith(f"| {method} |"))
        cells = dict(zip(columns, (c.strip() for c in line.strip("|").split("|"))))
        for metric, column in (("rca", "RCA"), ("mig", "MIG")):
            values = [r[metric] for r in rows if r["method"] == method]
            assert cells[column] == f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}", (method, metric)


def test_compare_resumes_finished_cells_and_reports_methods_that_cannot_run(planted, tmp_path):
    compare(planted, k=5, seeds=(0,), methods=("random",), out_dir=tmp_path, **TINY)
    stamp = (tmp_path / "random" / "seed0" / "result.json").stat().st_mtime_ns
    again = compare(planted, k=5, seeds=(0,), methods=("random", "ganspace"), out_dir=tmp_path, **TINY)
    assert (tmp_path / "random" / "seed0" / "result.json").stat().st_mtime_ns == stamp
    assert len(again.results) == 2
    # k = 6 > the 5 early features of the planted generator: GANSpace cannot give 6 components.
    failed = compare(planted, k=6, seeds=(0,), methods=("ganspace",), out_dir=tmp_path / "k6", **TINY)
    assert "error" in failed.results[0]
    assert "could not run" in failed.report.read_text()


def test_summary_mean_and_std():
    results = [{"method": "a", "seed": s, "mig": v} for s, v in enumerate((0.1, 0.3))]
    mean, std, count = summarize(results, ("a",))["a"]["mig"]
    assert mean == pytest.approx(0.2) and std == pytest.approx(0.1414, abs=1e-3) and count == 2


def test_a_ground_truth_set_too_small_to_hold_out_is_refused_with_the_config():
    with pytest.raises(ValueError, match="gt_train must be 0"):
        CompareConfig(gt_train=10)
    CompareConfig(gt_train=0), CompareConfig(gt_train=20)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown methods"):
        CompareConfig(methods=("sefa", "magic")).validate()


def test_cli_compare(tmp_path, capsys):
    code = main(["compare", "--generator", "planted", "-k", "3", "--seeds", "0", "--methods", "sefa,random",
                 "--rca-steps", "2", "--gt-train", "64", "--gt-steps", "2", "--gt-eval", "100", "--gt-image-size", "16",
                 "--batch-size", "16", "--out", str(tmp_path), "--threads", "1"])
    assert code == 0
    assert "report:" in capsys.readouterr().out
    assert (tmp_path / "report.md").exists() and (tmp_path / "sefa" / "seed0" / "directions").is_dir()


def test_chart_has_one_bar_group_per_metric(tmp_path):
    from PIL import Image

    from latentdirs.evaluation.compare import write_chart
    results = [{"method": m, "seed": s, "rca": 0.5 + 0.1 * s, "mig": 0.2} for m in ("sefa", "random") for s in (0, 1)]
    path = write_chart(results, ("sefa", "random"), tmp_path / "chart.png")
    with Image.open(path) as image:  # 2 metrics: (2.6 + 1.4 * 2) x 3.6 inches at 120 dpi
        assert image.size == (648, 432)
    assert write_chart([{"method": "sefa", "seed": 0, "find_seconds": 1.0}], ("sefa",), tmp_path / "none.png") is None


def test_resuming_with_other_settings_is_refused(planted, tmp_path):
    compare(planted, k=3, seeds=(0,), methods=("random",), out_dir=tmp_path, **TINY)
    with pytest.raises(ValueError, match="rca_steps"):
        compare(planted, k=3, seeds=(0,), methods=("random",), out_dir=tmp_path, **{**TINY, "rca_steps": 5})


def test_ld_variant_trains_more_directions_and_keeps_the_top_k(planted, tmp_path):
    result = compare(planted, k=3, seeds=(0,), methods=("ld-unit-K6",), out_dir=tmp_path, **TINY)
    assert "error" not in result.results[0]
    kept = DirectionSet.load(tmp_path / "ld-unit-K6" / "seed0" / "directions")
    trained = DirectionSet.load(tmp_path / "ld-unit-K6" / "seed0" / "discovery" / "directions")
    assert kept.num_directions == 3 and trained.num_directions == 6
    assert kept.scores.tolist() == sorted(trained.scores.tolist(), reverse=True)[:3]
    with pytest.raises(ValueError, match="fewer than k"):
        CompareConfig(num_directions=10, methods=("ld-ortho-K4",)).validate()


def test_ld_options_reach_every_ld_method_and_bad_ones_are_named(planted, tmp_path):
    main(["compare", "--generator", "planted", "-k", "3", "--seeds", "0", "--methods", "ld-unit,random",
          "--ld-steps", "4", "--batch-size", "16", "--rca-steps", "0", "--gt-train", "0",
          "--ld-set", "overlap_weight=10", "--ld-set", "shifts_per_latent=2", "--out", str(tmp_path)])
    run_config = json.loads((tmp_path / "ld-unit" / "seed0" / "discovery" / "config.json").read_text())["discovery"]
    assert (run_config["overlap_weight"], run_config["shifts_per_latent"]) == (10.0, 2)
    assert json.loads((tmp_path / "config.json").read_text())["compare"]["ld_options"] == {
        "overlap_weight": 10.0, "shifts_per_latent": 2}
    with pytest.raises(ValueError, match="set by compare itself"):
        CompareConfig(ld_options={"steps": 5}).validate()
    with pytest.raises(ValueError, match="unknown LD option"):
        CompareConfig(ld_options={"overlap": 5}).validate()
    # A folder measured with other LD options is not resumed with these.
    with pytest.raises(ValueError, match="ld_options"):
        compare(planted, k=3, seeds=(0,), methods=("ld-unit",), out_dir=tmp_path, **{**TINY, "rca_steps": 0,
                                                                                   "gt_train": 0})


def test_ld_can_start_at_sefa(planted, tmp_path):
    import latentdirs
    result = compare(planted, k=3, seeds=(0,), methods=("ld-ortho",), out_dir=tmp_path, ld_start="sefa",
                     ld_options={"importance_latents": 0}, **{**TINY, "rca_steps": 0, "gt_train": 0, "lr": 1e-7})
    assert "error" not in result.results[0]
    found = DirectionSet.load(tmp_path / "ld-ortho" / "seed0" / "directions").matrix
    start = latentdirs.sefa(planted, 3).matrix
    assert (found * start).sum(0).abs().min() > 0.999  # 4 steps at lr 1e-7: still SeFa's directions
    with pytest.raises(ValueError, match="ld_start must be one of"):
        CompareConfig(ld_start="pca").validate()
    with pytest.raises(ValueError, match="ld_preset must be one of"):
        CompareConfig(ld_preset="best").validate()


def test_ld_in_a_comparison_is_the_named_preset(planted, tmp_path):
    compare(planted, k=3, seeds=(0,), methods=("ld-unit",), out_dir=tmp_path / "recipe",
            **{**TINY, "rca_steps": 0, "gt_train": 0})
    recipe = json.loads((tmp_path / "recipe" / "ld-unit" / "seed0" / "discovery" / "config.json").read_text())
    assert (recipe["discovery"]["start"], recipe["discovery"]["overlap_weight"]) == ("sefa", 10.0)
    assert recipe["discovery"]["parametrization"] == "unit"  # the method name still picks A's constraint
    main(["compare", "--generator", "planted", "-k", "3", "--seeds", "0", "--methods", "ld-unit", "--ld-preset", "demo",
          "--ld-steps", "4", "--batch-size", "16", "--rca-steps", "0", "--gt-train", "0", "--out", str(tmp_path / "demo")])
    paper = json.loads((tmp_path / "demo" / "ld-unit" / "seed0" / "discovery" / "config.json").read_text())
    assert (paper["discovery"]["start"], paper["discovery"]["shift_weight"]) == ("axes", 0.25)


def test_report_tables_and_bar_charts_refuse_ragged_input(tmp_path):
    from latentdirs import report
    from latentdirs.charts import grouped_bars
    with pytest.raises(ValueError, match=r"rows \[1\] do not have 2 cells"):  # was a table with shifted cells
        report.table(["a", "b"], [[1, 2], [3]])
    with pytest.raises(ValueError, match="at least one column header"):
        report.table([], [])
    with pytest.raises(ValueError, match="at least one series"):  # was a ZeroDivisionError
        grouped_bars(["MIG"], {}, tmp_path / "bars.png")
    with pytest.raises(ValueError, match="1 means and 1 stds for 2 groups"):  # one value was drawn twice
        grouped_bars(["MIG", "RCA"], {"sefa": ([0.5], [0.1])}, tmp_path / "bars.png")
