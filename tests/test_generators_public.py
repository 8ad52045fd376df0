"""Public checkpoint formats: each adapter reproduces the upstream code's outputs.

The fixtures in ``tests/fixtures/layouts`` (copied from ``shared/layouts``) were produced by
running the upstream code on weights filled with a documented deterministic rule. Each test
writes a checkpoint in the exact published container, loads it through
``load_generator(kind, path)`` and compares with the stored outputs.
"""
from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from latentdirs import generators
from latentdirs.generators import load_generator
from latentdirs.generators.checkpoints import CheckpointError

torch.set_num_threads(1)

FIXTURE_DIRS = [Path(__file__).parent / "fixtures" / "layouts", Path(__file__).parents[2] / "shared" / "layouts"]
TOLERANCE = 1e-5
MAX_ERRORS: dict[str, float] = {}  # reported at the end of the session (see conftest-free summary below)


def fixture_path(name: str) -> Path:
    for folder in FIXTURE_DIRS:
        if (folder / name).exists():
            return folder / name
    pytest.skip(f"fixture {name} not found in {[str(d) for d in FIXTURE_DIRS]}")


def layout(name: str) -> dict:
    return json.loads(fixture_path(f"{name}.layout.json").read_text())


def arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(fixture_path(name)) as data:
        return {k: data[k] for k in data.files}


def filled_state_dict(spec: dict) -> dict[str, torch.Tensor]:
    """The layout's state dict filled with the fixture rule (README 'Fill rule')."""
    constants = spec.get("constant_buffers_left_as_constructed", {})
    state: dict[str, torch.Tensor] = {}
    for index, ((key, shape, _dtype), (_, _, how)) in enumerate(zip(spec["state_dict"], spec["fixture_fill"])):
        if how.startswith("alias_of:"):
            state[key] = state[how.split(":", 1)[1]]  # same tensor, as in the saved file
        elif how == "untouched_integer":
            state[key] = torch.zeros(shape, dtype=torch.int64)
        elif how == "untouched_constructed":
            state[key] = torch.tensor(constants[key], dtype=torch.float32)
        else:
            values = 0.05 * np.sin(0.37 * np.arange(math.prod(shape), dtype=np.float64) + 1.3 * index)
            if how == "sin_rule_plus_1":
                values = 1.0 + values
            else:
                assert how == "sin_rule", how
            state[key] = torch.from_numpy(values.astype(np.float32).reshape(shape))
    return state


def record(name: str, error: float) -> None:
    MAX_ERRORS[name] = error
    print(f"[fixture] {name}: max abs error {error:.3g}")


def max_error(a: torch.Tensor, b: np.ndarray) -> float:
    return float((a.detach().float() - torch.from_numpy(b)).abs().max())


def check_protocol(gen, batch: int = 2) -> None:
    """The hooks discovery, SeFa and GANSpace call all answer with sane shapes."""
    z = gen.sample_latents(batch, generator=torch.Generator().manual_seed(0))
    assert z.shape == (batch, gen.latent_dim)
    weight = gen.first_layer_weight()
    assert weight is not None and weight.dim() == 2 and weight.shape[1] == gen.latent_dim
    feats = gen.early_features(z)
    assert feats is not None and feats.shape[0] == batch
    json.dumps(gen.describe())


# -- SN-GAN (GanLatentDiscovery) -------------------------------------------------------------

def write_sngan(folder: Path, name: str, args: dict | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(filled_state_dict(layout(name)), folder / "generator.pt")
    if args is not None:
        (folder / "args.json").write_text(json.dumps(args))
    return folder


@pytest.mark.parametrize("kind,name", [("sngan-mnist", "gld_sngan_mnist"), ("sngan-anime", "gld_sngan_anime")])
def test_sngan_reproduces_fixture(tmp_path, kind, name):
    spec = layout(name)
    args = spec["container"]["files"]["args.json"]["args_json_used_for_this_fixture"]
    folder = write_sngan(tmp_path / "SN", name, args)
    data = arrays(f"{name}.fixture.npz")
    for path in (folder, folder / "generator.pt"):  # both forms users have
        gen = load_generator(kind, path)
        with torch.no_grad():
            out = gen(torch.from_numpy(data["z"]))
        assert out.shape == data["out"].shape
        error = max_error(out, data["out"])
        assert error < TOLERANCE
    record(name, error)
    check_protocol(gen)
