"""benchmarks/ and docs/ scripts keep working with the package as it is now.

Every script must at least parse its options (``--help``, in this process: it imports the
package the way the script does). The cheap ones run their smallest setting here; the ones
that take minutes even then are marked slow, and three cannot run in a test at all (reasons
below).
"""
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "docs").glob("*.py"))
# Scripts that cannot run their smallest setting here, and why.
NOT_RUN = {
    "saliency_random_ablation.py": "reads the run and results of a full benchmarks/saliency_e2e.py (11 minutes)",
    "ld_levers.py": "needs a finished `latentdirs compare` folder on shapes3d (its ld-unit cells)",
    "sweep_parallel.py": "writes benchmarks/results/sweep_parallel_*.json in place (no --out): a test would overwrite it",
    "screenshots.py": "drives Chromium through Playwright (the browser extra); tests/test_browser.py covers the app",
}


def run_script(path: Path, *argv: str, monkeypatch) -> None:
    # Every run below passes output paths in tmp_path: the committed results and figures stay as they are.
    monkeypatch.setattr(sys, "argv", [str(path), *argv])
    monkeypatch.syspath_prepend(str(path.parent))  # as `python benchmarks/x.py` would
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exc:
        assert exc.code in (0, None), f"{path.name} {' '.join(argv)} exited with {exc.code}"


@pytest.mark.parametrize("path", [p for p in SCRIPTS if "argparse" in p.read_text()], ids=lambda p: p.name)
def test_every_script_parses_its_options(path, monkeypatch, capsys):
    run_script(path, "--help", monkeypatch=monkeypatch)
    assert "usage:" in capsys.readouterr().out


def test_the_scripts_without_options_are_the_ones_named():
    no_options = {p.name for p in SCRIPTS if "argparse" not in p.read_text()}
    assert no_options <= set(NOT_RUN)


SMALLEST = [
    ("inversion.py", ["--num-test", "6", "--settings", "w=steps:2", "w+ pyramid=steps:2,per_layer:1,scales:2",
                      "--classifier-steps", "3", "--classifier-images", "32", "--classifier", "{tmp}/c.pt",
                      "--encoder-steps", "3", "--encoder", "{tmp}/enc", "--out-prefix", "{tmp}/inv"]),
    ("closed_form.py", ["--generator", "planted", "-k", "3", "--samples", "200", "--rounds", "1", "--out", "{tmp}/cf.json"]),
    ("planted_study.py", ["--list"]),
    ("fast_path_quality.py", ["--options", "plain,channels_last", "--steps", "4", "--seeds", "0", "--num-directions", "3",
                              "--batch-size", "16", "--rca-steps", "4", "--out", "{tmp}/fp.json"]),
    ("web_latency.py", ["--generator", "planted", "--requests", "3", "--out", "{tmp}/web.json"]),
    ("house_lines.py", ["--base", "HEAD", "--json", "{tmp}/lines.json"]),  # HEAD: a shallow clone has it
    ("gan_step_speed.py", ["--architecture", "dcgan-up", "--steps", "24", "--batch-size", "2", "--repeats", "1",
                           "--out", "{tmp}/gss.json"]),
]
SMALLEST_SLOW = [
    ("shared_pairs.py", ["--shifts", "1,2", "--budget", "1", "--num-directions", "3", "--batch-size", "16",
                         "--rca-steps", "4", "--out", "{tmp}/sp.json"]),
    ("saliency_e2e.py", ["--num-directions", "4", "--discover-steps", "4", "--discover-batch", "8", "--unet-steps", "2",
                         "--unet-batch", "4", "--heldout", "8", "--no-reference", "--out", "{tmp}/sal",
                        "--json", "{tmp}/sal.json", "--figure", "{tmp}/fig.png"]),
]


@pytest.mark.parametrize("name, argv", SMALLEST, ids=[n for n, _ in SMALLEST])
def test_script_runs_its_smallest_setting(name, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a script writes by default lands here
    run_script(ROOT / "benchmarks" / name, *(a.format(tmp=tmp_path) for a in argv), monkeypatch=monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("name, argv", SMALLEST_SLOW, ids=[n for n, _ in SMALLEST_SLOW])
def test_slow_script_runs_its_smallest_setting(name, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_script(ROOT / "benchmarks" / name, *(a.format(tmp=tmp_path) for a in argv), monkeypatch=monkeypatch)


def test_gan_candidates_measures_runs_side_by_side(tmp_path, monkeypatch, capsys):
    """A tiny train-gan run and an (untrained) factor classifier: export, measure, table, grid, JSON."""
    import json

    import torch

    from latentdirs.evaluation.quality import FactorClassifier
    from latentdirs.gan.train import GANTrainConfig, train_gan
    run = tmp_path / "cand_tiny"
    train_gan(GANTrainConfig(architecture="dcgan-w", steps=2, batch_size=4, latent_dim=8, base_channels=4, max_channels=8,
                          mapping_layers=2, num_train_images=8, sample_every=2, checkpoint_every=2,
                          bn_calibration_batches=1), run, progress=False)
    torch.save(FactorClassifier().state_dict(), tmp_path / "clf.pt")
    run_script(ROOT / "benchmarks" / "gan_candidates.py", str(run), "--classifier", str(tmp_path / "clf.pt"),
               "--num-images", "20", "--grids", str(tmp_path / "grids"), "--out", str(tmp_path / "c.json"),
               monkeypatch=monkeypatch)
    row, = json.loads((tmp_path / "c.json").read_text())
    assert row["run"] == "cand_tiny" and row["architecture"] == "dcgan-w" and row["steps"] == 2
    assert row["frechet_distance_real_vs_generated"] > row["frechet_distance_real_vs_real"]  # an untrained GAN
    assert "within_one_step_fraction_generated" in row and row["changes"] == "dcgan-w"
    assert "| cand_tiny | dcgan-w | " in capsys.readouterr().out
    assert (tmp_path / "grids" / "cand_tiny.png").exists()


def test_levers_table_puts_compare_folders_side_by_side(planted, tmp_path, monkeypatch, capsys):
    from latentdirs.evaluation.compare import compare
    tiny = dict(ld_steps=3, batch_size=16, rca_steps=3, gt_train=0, progress=False)
    compare(planted, k=3, seeds=(0, 1), methods=("ld-unit",), out_dir=tmp_path / "plain", ld_preset="short", **tiny)
    compare(planted, k=3, seeds=(0,), methods=("ld-unit",), out_dir=tmp_path / "annealed",
            ld_options={"shift_weight_schedule": "linear"}, **tiny)
    run_script(ROOT / "benchmarks" / "levers_table.py", str(tmp_path / "plain"), str(tmp_path / "annealed"),
               monkeypatch=monkeypatch)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| folder | method | LD options | seeds | RCA |")
    assert lines[2].startswith("| plain | ld-unit | — | 2 | ")
    assert lines[3].startswith("| annealed | ld-unit | preset=disentangle, shift_weight_schedule=linear | 1 | ")


def test_inversion_report_counts_near_misses_per_factor(monkeypatch):
    """A reconstruction read as scale 3 where the scene has 2 is a near miss; read as 7, a far one."""
    from types import SimpleNamespace

    import torch
    from latentdirs.data.shapes3d import FACTOR_SIZES
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "benchmarks"))
    from edit_precision import inversion_report
    factors = torch.tensor([[0, 0, 0, 2, 0, 0]] * 4)
    reconstructed_scale = torch.tensor([2, 3, 1, 7])  # right, near, near, far

    def classifier(images):  # reads the scale planted in the first pixel (/10: images are in [-1, 1])
        scale = (images[:, 0, 0, 0] * 10).round().long()
        return [torch.nn.functional.one_hot(scale if i == 3 else factors[:, i], size).float()
                for i, size in enumerate(FACTOR_SIZES)]
    pictures = torch.zeros(4, 3, 4, 4)
    pictures[:, 0, 0, 0] = reconstructed_scale / 10
    result = SimpleNamespace(images=pictures, pixel_error=torch.zeros(4), initial_pixel_error=torch.zeros(4),
                             seconds_per_image=0.0, cpu_seconds_per_image=0.0, settings={})
    kept = inversion_report(None, classifier, pictures, factors, result, encoder=None)["factors_kept"]
    assert kept["per_factor"]["scale"] == 0.25 and kept["all_six"] == 0.25
    assert kept["misses_off_by_one"] == {"scale": {"misses": 3, "off_by_one": pytest.approx(2 / 3)}}


def test_house_lines_counts_each_line_once_by_kind(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from house_lines import kinds
    text = '"""Module doc,\ntwo lines."""\nimport os  # why\n\n# a comment\n\n\ndef f():\n    """Doc."""\n    return 1\n'
    assert kinds(text) == {"total": 10, "code": 3, "docstring": 3, "comment": 1, "blank": 3}
