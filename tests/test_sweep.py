import json

import pytest
import torch

import latentdirs
from latentdirs.evaluation.diversity import collapse_ratios, distinct_directions
from latentdirs.generators.base import Generator
from latentdirs.sweep import cell_name, expand, parse_grid, sweep

TINY = {"steps": 12, "batch_size": 16, "log_every": 4, "checkpoint_every": 4, "importance_latents": 4}
FAST_EVAL = {"rca_steps": 4, "eval_latents": 4, "progress": False}


def test_grid_parsing_and_cell_names():
    grid = parse_grid(["num_directions=5,10", "lambda=0,0.25", "parametrization=unit", "k=10,20"])
    assert grid == {"num_directions": [5, 10, 20], "shift_weight": [0.0, 0.25], "parametrization": ["unit"]}
    assert parse_grid(["steps=2e3"]) == {"steps": [2000]}
    cells = expand({"k": [10, 20], "lambda": [0.25]}, {"steps": 100})
    assert [name for name, _ in cells] == ["k10-lambda0.25-unit-seed0", "k20-lambda0.25-unit-seed0"]
    assert all(options["steps"] == 100 and options["lr"] == 1e-3 for _, options in cells)
    assert cell_name(cells[0][1], ["num_directions", "steps"]) == "k10-lambda0.25-unit-seed0-steps100"
    # one-at-a-time: K at the base lambda, lambda at the base K; the shared cell appears once
    oat = [name for name, _ in expand({"k": [5, 10], "lambda": [0, 0.25]}, {"num_directions": 10},
                                      design="one-at-a-time")]
    assert oat == ["k5-lambda0.25-unit-seed0", "k10-lambda0-unit-seed0", "k10-lambda0.25-unit-seed0"]
    with pytest.raises(ValueError, match="unknown discovery option"):
        parse_grid(["nonsense=1"])
    with pytest.raises(ValueError, match="int values"):
        parse_grid(["num_directions=2.5"])


def test_two_cell_sweep_end_to_end_and_rerun_skips(planted, tmp_path):
    out = tmp_path / "sweep"
    result = sweep(planted, {"k": [2, 3]}, TINY, out, **FAST_EVAL)
    assert [c["cell"] for c in result.cells] == ["k2-lambda0.25-unit-seed0", "k3-lambda0.25-unit-seed0"]
    for cell in result.cells:
        assert 0 < cell["joint_accuracy"] <= 1
        assert 1 <= cell["distinct"] <= cell["num_directions"] and cell["collapsed_fraction"] == 0
        folder = out / cell["cell"]
        assert {"config.json", "metrics.jsonl", "checkpoint.pt", "directions", "result.json", "overview.png"} <= {
            p.name for p in folder.iterdir()}
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    # A cell's RCA is the RCA of the directions it saved, measured with the cell's own settings.
    from latentdirs import DirectionSet
    first = out / result.cells[0]["cell"]
    d = json.loads((first / "config.json").read_text())["discovery"]
    assert result.cells[0]["rca"] == latentdirs.rca(planted, DirectionSet.load(first / "directions"), steps=4, seed=0,
                                                    batch_size=16, lr=d["lr"], shift_range=d["shift_range"],
                                                    min_shift=d["min_shift"])
    report = (out / "report.md").read_text()
    assert "## Metrics vs K" in report and "![metrics vs K](plot_K.png)" in report
    assert (out / "plot_K.png").stat().st_size > 1000

    stamp = (out / "k2-lambda0.25-unit-seed0" / "result.json").stat().st_mtime_ns
    again = sweep(planted, {"k": [2, 3]}, TINY, out, **FAST_EVAL)
    assert (out / "k2-lambda0.25-unit-seed0" / "result.json").stat().st_mtime_ns == stamp
    assert "skip k2-lambda0.25-unit-seed0 (complete)" in (out / "sweep.log").read_text()
    assert [c["rca"] for c in again.cells] == [c["rca"] for c in result.cells]
    remeasured = sweep(planted, {"k": [2, 3]}, TINY, out, **FAST_EVAL, reevaluate="measures", collapse_threshold=2.0)
    assert [c["rca"] for c in remeasured.cells] == [c["rca"] for c in result.cells]  # RCA kept, the rest measured
    assert all(c["collapsed_fraction"] == 1 for c in remeasured.cells)
    with pytest.raises(ValueError, match="other options"):
        sweep(planted, {"k": [2]}, {**TINY, "lr": 0.01}, out, **FAST_EVAL)
    with pytest.raises(ValueError, match="another generator"):
        sweep(latentdirs.load_generator("planted", seed=1), {"k": [2]}, TINY, out, **FAST_EVAL)


class _FailingGenerator(Generator):
    """The planted generator that dies after a number of calls (a killed process)."""

    def __init__(self, inner, calls: int) -> None:
        super().__init__()
        self.inner, self.latent_dim, self.name, self.calls = inner, inner.latent_dim, "planted", calls

    def describe(self):
        return self.inner.describe()

    def synthesize(self, latent):
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt
        return self.inner.synthesize(latent)


def test_an_interrupted_cell_resumes_from_its_checkpoint(planted, tmp_path):
    out = tmp_path / "sweep"
    with pytest.raises(KeyboardInterrupt):
        sweep(_FailingGenerator(planted, calls=20), {"k": [2]}, TINY, out, **FAST_EVAL)  # dies in step ~9
    cell = out / "k2-lambda0.25-unit-seed0"
    assert (cell / "checkpoint.pt").exists() and not (cell / "directions").exists()
    result = sweep(planted, {"k": [2]}, TINY, out, **FAST_EVAL)
    assert "resumed at step 8" in (cell / "log.txt").read_text()
    assert "resume k2-lambda0.25-unit-seed0" in (out / "sweep.log").read_text()
    assert result.cells[0]["state_before"] == "resume"
    assert [json.loads(line)["step"] for line in (cell / "metrics.jsonl").read_text().splitlines()][-1] == 12


def test_identical_directions_count_once():
    a, b = torch.randn(50), torch.randn(50)
    fields = torch.stack([a, a.clone(), b, -2 * a, torch.zeros(50), b + 0.01 * torch.randn(50)])
    found = distinct_directions(fields, threshold=0.9)
    assert found.count == 2 and found.inactive == [4]
    assert sorted(map(sorted, found.clusters)) == [[0, 1, 3], [2, 5]]
    assert distinct_directions(torch.eye(4)).count == 4 and distinct_directions(torch.eye(4)).mean_abs_cos == 0


def test_collapse_flags_a_direction_that_sends_every_latent_to_one_image():
    torch.manual_seed(0)
    patterns = torch.randn(8, 3 * 16 * 16)
    constant = torch.full((3 * 16 * 16,), 0.3)

    def render(z):
        saturation = torch.sigmoid(4 * (z[:, :1] - 4))  # far along +e_0 every latent gives `constant`
        return ((1 - saturation) * (z @ patterns) / 8 + saturation * constant).view(-1, 3, 16, 16)
    gen = latentdirs.wrap(render, latent_dim=8)
    ratios = collapse_ratios(gen, torch.eye(8)[:, :3], shift=8.0, num_latents=32)
    assert ratios[0] < 0.05 and (ratios[1:] > 0.5).all()


def test_sweep_from_the_command_line(tmp_path, capsys):
    from latentdirs.cli import main
    out = tmp_path / "s"
    args = ["sweep", "--generator", "planted", "--grid", "k=2", "--grid", "lambda=0,0.5", "--set", "steps=4",
            "--set", "batch_size=8", "--set", "log_every=2", "--rca-steps", "0", "--eval-latents", "4", "--out", str(out)]
    assert main(args) == 0
    assert sorted(p.name for p in out.glob("k*")) == ["k2-lambda0-unit-seed0", "k2-lambda0.5-unit-seed0"]
    assert "## Metrics vs lambda" in (out / "report.md").read_text()
    assert main(["sweep", "--out", str(out), "--report-only"]) == 0
    assert main(["sweep", "--generator", "planted", "--grid", "bogus=1", "--out", str(out)]) == 2


def test_ground_truth_scores_and_plots(planted, tmp_path):
    out = tmp_path / "s"
    result = sweep(planted, {"k": [2], "lambda": [0.25, 0.5]}, {**TINY, "steps": 4}, out, rca_steps=0,
                   eval_latents=4, progress=False, ground_truth=True, ground_truth_steps=3, ground_truth_points=200)
    # each cell's score is the ground-truth protocol run on the set it saved (same data, same encoder seed)
    from latentdirs.directions import DirectionSet
    from latentdirs.evaluation.ground_truth import ground_truth_dataset, ground_truth_scores
    images, factors = ground_truth_dataset(planted, 200, seed=10_000)[:2]
    migs = []
    for cell in result.cells:
        saved = DirectionSet.load(out / cell["cell"] / "directions")
        again = ground_truth_scores(planted, saved.top(min(10, saved.num_directions)), images, factors, steps=3)
        assert cell["gt_mig"] == pytest.approx(again["mig"], abs=1e-9)
        migs.append(cell["gt_mig"])
    assert len(set(migs)) == 2  # two lambdas, two different sets, two scores
    assert "mig" in (out / "report.md").read_text()
    assert (out / "plot_lambda.png").stat().st_size > 1000


@pytest.mark.slow
def test_worker_processes_give_the_results_of_one_process(planted, tmp_path):
    # Cells in spawned workers (the generator travels as its load spec) must measure exactly what one process does.
    settings = dict(rca_steps=2, eval_latents=2, progress=False, render=False)
    tiny = {"steps": 4, "batch_size": 8, "log_every": 2, "importance_latents": 2}
    alone = sweep("planted", {"k": [2, 3]}, tiny, tmp_path / "one", workers=1, **settings)
    pooled = sweep("planted", {"k": [2, 3]}, tiny, tmp_path / "two", workers=2, **settings)
    assert [(c["cell"], c["rca"], c["distinct"]) for c in pooled.cells] == \
        [(c["cell"], c["rca"], c["distinct"]) for c in alone.cells]


def test_a_grid_that_gives_no_cells_is_refused_before_any_folder(tmp_path):
    from latentdirs import load_generator
    planted = load_generator("planted")
    with pytest.raises(ValueError, match="gives num_directions no values"):
        sweep(planted, {"k": []}, out_dir=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="no grid"):
        sweep(planted, [], out_dir=tmp_path / "b", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_diversity_measures_refuse_degenerate_input(planted, tmp_path):
    from latentdirs.charts import line_panels
    from latentdirs.directions import DirectionSet
    from latentdirs.evaluation.diversity import change_fields, diversity_report
    matrix = DirectionSet.random(16, 2, seed=0).matrix
    for bad, match in ((dict(matrix=matrix[:, 0]), r"\(16, K\) with K >= 1"), (dict(matrix=matrix[:, :0]), "K >= 1"),
                       (dict(matrix=matrix * float("nan")), "NaN"),  # was a report of NaN
                       (dict(num_latents=0), "num_latents must be >= 1"),
                       (dict(change_shift=0.0), "nonzero"),  # every direction came out inactive
                       (dict(same_threshold=float("nan")), r"must be a \|cos\|"),
                       (dict(collapse_threshold=float("nan")), "must be a ratio of spreads")):
        with pytest.raises(ValueError, match=match):
            diversity_report(planted, **{"matrix": matrix, "num_latents": 2, **bad})
    with pytest.raises(ValueError, match="num_latents must be >= 2"):  # the spread of one image is NaN
        collapse_ratios(planted, matrix, num_latents=1)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        change_fields(planted, matrix, num_latents=2, batch_size=0)
    with pytest.raises(ValueError, match=r"\(K, D\)"):
        distinct_directions(torch.zeros(10))
    with pytest.raises(ValueError, match="1 to 4 panels"):  # a fifth was dropped
        line_panels([{"title": "t", "lines": []}] * 5, ["a"], "x", tmp_path / "p.png")
