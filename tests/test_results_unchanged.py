"""The results files of demo, discover, sweep and compare match those the code wrote before
issue 16's restructuring (tests/fixtures/results_before_house.json, written by running this
file as a script against the earlier code).

    PYTHONPATH=OLD_CHECKOUT/src python tests/test_results_unchanged.py tests/fixtures/results_before_house.json

Times differ from run to run and are left out; floats are compared to 1e-3 relative (float sums differ in
the last digits from one CPU to another, so after 12 training steps on a batch of 16 an accuracy can move by a
sample or two: accuracies get 0.05 absolute); everything else must be equal.

The DCI and modularity entries are the exception to "written by the earlier code": issue 13 changed
their definitions on purpose after the fixture was written (disentanglement_lib's split and predictor,
a modularity fix; test_metrics checks them against disentanglement_lib's formulas), so issue 31
re-generated those entries alone with the current code, every other entry untouched:

    python tests/test_results_unchanged.py --redefined tests/fixtures/results_before_house.json

Like the test (tests/conftest.py swaps the predictor in every module but test_metrics), that run
scores DCI with the random forest: the gbt predictor takes minutes on these 10-value factors.
"""
import json
import sys
import tempfile
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "results_before_house.json"
TIMES = ("seconds", "sec_per_step", "time")
REDEFINED = ("dci_", "modularity")  # keys whose fixture entries come from the current definitions
# Options added after the fixture was written: at these defaults they change nothing, so they are
# left out of the comparison (any other value would show as a difference).
ADDED_AT_DEFAULT = {"shift_weight_schedule": "constant", "overlap_weight": 0.0, "rank_by": "image_change",
                    "ld_options": {}, "dci_predictor": "gbt", "start": "axes", "ld_preset": "short", "ld_init": None}


# The demo's settings before issue 28 added the space, preset, ground-truth and naming ones.
DEMO_SETTINGS = ("batch_size", "generator", "lr", "num_directions", "parametrization", "rca_steps", "seed", "steps")


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items()
                if not any(t in k for t in TIMES) and not (k in ADDED_AT_DEFAULT and v == ADDED_AT_DEFAULT[k])}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _read(path: Path):
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return json.loads(path.read_text())


def collect(tmp: Path) -> dict:
    """Run each command in a tiny setting; {relative path: contents without times} of its results files."""
    import torch

    import latentdirs
    from latentdirs.cli import main
    from latentdirs.demo import run_demo
    from latentdirs.evaluation.compare import compare
    from latentdirs.sweep import sweep
    import latentdirs.demo
    torch.set_num_threads(1)
    # Pinned, not the kind's defaults: a later change of the planted defaults must not read as a changed result.
    pinned = dict(latent_dim=16, image_size=32, seed=0, nuisance_strength=0.0, nuisance_jitter=0.0)
    planted = latentdirs.load_generator("planted", **pinned)
    tiny = {"steps": 12, "batch_size": 16, "log_every": 4, "checkpoint_every": 4, "importance_latents": 4}
    sweep(planted, {"k": [2, 3]}, tiny, tmp / "sweep", rca_steps=4, eval_latents=4, progress=False, render=False)
    compare(planted, k=3, seeds=(0,), methods=("ld-unit", "sefa", "random"), out_dir=tmp / "compare", ld_steps=4,
            batch_size=16, rca_steps=4, gt_train=64, gt_steps=4, gt_eval=200, gt_image_size=16, ganspace_samples=200,
            ld_preset="short", progress=False)  # compare's LD before the disentangle recipe became its default
    load = latentdirs.demo.load_generator
    latentdirs.demo.load_generator = lambda kind: load(kind, **pinned)
    try:
        # The demo's LD before issue 28 (the `demo` preset; about 20 log points); the new parts (ground truth,
        # names) are off, and its config.json is compared on the settings it had then.
        run_demo("planted", latentdirs.PRESETS["demo"], num_directions=4, steps=6, rca_steps=3, batch_size=16,
                 log_every=1, gt_train=0, name_latents=0, runs_dir=tmp / "demo", progress=False)
    finally:
        latentdirs.demo.load_generator = load
    main(["discover", "--generator", "planted", "-k", "3", "--steps", "6", "--batch-size", "16", "--threads", "1",
          "--out", str(tmp / "discover"), "--no-render"] + [f"-O{k}={v}" for k, v in pinned.items()])
    files = sorted(p for pattern in ("sweep/*/result.json", "sweep/results.jsonl", "compare/*/*/result.json",
                                     "compare/metrics.jsonl", "demo/*/config.json", "demo/*/discovery/metrics.jsonl",
                                     "discover/metrics.jsonl", "discover/directions/directions.json")
                   for p in tmp.glob(pattern))
    out = {}
    for path in files:
        key = str(path.relative_to(tmp))
        key = key.replace(path.relative_to(tmp).parts[1], "RUN") if key.startswith("demo/") else key
        out[key] = _without_times(_read(path))
    for key in (k for k in out if k.startswith("demo/") and k.endswith("config.json")):
        settings = out[key]["demo"]
        out[key] = {"demo": {k: settings[k] for k in DEMO_SETTINGS}, "generator": out[key]["generator"]}
    for meta in (k for k in out if k.endswith("directions.json")):
        out[meta].pop("version", None)
    return out


def _approx(value, key=""):
    """value with every float wrapped in pytest.approx, so nested results compare across CPUs."""
    if isinstance(value, dict):
        return {k: _approx(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v, key) for v in value]
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-3, abs=0.05 if "accuracy" in key else 1e-6, nan_ok=True)
    return value


@pytest.mark.skipif(not FIXTURE.exists(), reason="no reference results")
def test_results_files_are_unchanged(tmp_path):
    expected = _without_times(json.loads(FIXTURE.read_text()))
    found = json.loads(json.dumps(collect(tmp_path), default=str))
    assert sorted(found) == sorted(expected)
    for key in expected:
        assert found[key] == _approx(expected[key]), key


def _with_redefined(old, new):
    """``old`` with the values of the REDEFINED keys taken from ``new`` (same structure), all else kept."""
    if isinstance(old, dict):
        return {k: new[k] if k.startswith(REDEFINED) else _with_redefined(v, new[k]) for k, v in old.items()}
    if isinstance(old, list):
        return [_with_redefined(a, b) for a, b in zip(old, new, strict=True)]
    return old


if __name__ == "__main__":
    redefined = "--redefined" in sys.argv
    target = Path([a for a in sys.argv[1:] if a != "--redefined"][0])
    if redefined:
        import functools

        from latentdirs.evaluation import ground_truth, metrics
        ground_truth.all_metrics = functools.partial(metrics.all_metrics, predictor="forest")
    with tempfile.TemporaryDirectory() as tmp:
        current = json.loads(json.dumps(collect(Path(tmp)), default=str))
    if redefined:
        current = _with_redefined(json.loads(target.read_text()), current)
    target.write_text(json.dumps(current, indent=1, default=str, sort_keys=True) + "\n")
