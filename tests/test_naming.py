import numpy as np
import pytest
import torch
from torch import nn

import latentdirs
from latentdirs import DirectionSet
from latentdirs.evaluation.naming import (DirectionNames, has_factor_classifier, load_factor_classifier,
                                          name_directions)


def _two_factor_world():
    """Latent (z0, z1) -> an image whose red level is tanh(z0) and green level tanh(z1); a classifier reads
    factor 'a' from red and 'b' from green (two values each). Coordinate 0 moves a only, 1 moves b only."""
    def synthesize(z):
        levels = torch.tanh(z)
        return torch.cat([levels[:, :1, None, None].expand(-1, 1, 16, 16), levels[:, 1:2, None, None].expand(-1, 1, 16, 16),
                          torch.zeros(len(z), 1, 16, 16)], 1)

    class Reader(nn.Module):
        def forward(self, images):
            red, green = images[:, 0].mean((1, 2)), images[:, 1].mean((1, 2))
            return [torch.stack([-8 * red, 8 * red], 1), torch.stack([-8 * green, 8 * green], 1)]

    return latentdirs.wrap(synthesize, latent_dim=2, name="two-factor"), Reader()


def test_each_direction_is_named_by_the_factor_it_moves_with_its_purity():
    G, reader = _two_factor_world()
    diagonal = torch.tensor([[1.0, 0.0, 0.7071], [0.0, 1.0, 0.7071]])
    names = name_directions(G, DirectionSet(diagonal), reader, factor_names=("a", "b"), num_latents=256,
                            shifts=(-2.0, -1.0, 1.0, 2.0))
    assert [names.factor(k) for k in range(3)][:2] == ["a", "b"]
    assert names.purity[0] > 0.99 and names.purity[1] > 0.99  # each axis moves one factor only
    assert 0.4 < names.shares[2, 0] < 0.6  # the diagonal moves both alike: purity near 1/2
    assert names.label(0) == f"a {names.purity[0]:.2f}"
    np.testing.assert_allclose(names.shares.sum(1), 1.0, rtol=1e-6)
    assert names.factors_named() == ["a", "b"]
    round_trip = DirectionNames.from_dict(names.to_dict())
    assert [round_trip.label(k) for k in range(3)] == names.to_dict()["labels"]


def test_a_direction_that_changes_nothing_read_is_labelled_so():
    G, reader = _two_factor_world()
    still = DirectionSet(torch.tensor([[1.0], [0.0]]))
    names = name_directions(G, still, reader, factor_names=("a", "b"), shifts=(-1e-4, 1e-4))
    assert names.factor(0) is None and names.label(0) == "little change"


def test_the_shipped_classifier_reads_real_scenes_and_names_shapes3d_directions():
    from latentdirs.data.shapes3d import make_dataset, to_tensor
    classifier, config = load_factor_classifier()
    images, factors, _ = make_dataset(200, seed=77_000)  # scenes it never saw
    with torch.no_grad():
        read = torch.stack([logits.argmax(1) for logits in classifier(to_tensor(images))], 1).numpy()
    assert (read == factors).mean() > 0.95, "the shipped factor classifier no longer reads real scenes"
    assert min(config["held_out"]["accuracy"].values()) > 0.95

    G = latentdirs.load_generator("shapes3d", space="w")
    assert has_factor_classifier(G) and not has_factor_classifier(latentdirs.load_generator("planted"))
    sefa = latentdirs.sefa(G, 4)
    names = name_directions(G, sefa, num_latents=8)
    assert names.shares.shape == (4, 6) and (names.change > 0).all()
    # SeFa's second W direction turns the room (its chart: docs/demo/charts/overview_sefa.png)
    assert names.factor(1) == "orientation"


def test_naming_a_generator_without_a_classifier_says_what_is_missing(planted):
    with pytest.raises(latentdirs.GeneratorError, match="no factor classifier.*Pass classifier="):
        name_directions(planted, DirectionSet.identity(planted.latent_dim, 2))


def test_compare_reports_the_names_of_each_method_s_directions(tmp_path):
    from latentdirs.evaluation.compare import compare
    G = latentdirs.load_generator("shapes3d", space="w")
    done = compare(G, k=2, seeds=(0,), methods=("sefa", "random"), out_dir=tmp_path / "cmp", rca_steps=0, gt_train=0,
                   name_latents=4, progress=False)
    text = done.report.read_text()
    assert "name purity" in text and "factors named" in text and "## Named directions" in text
    sefa = next(r for r in done.results if r["method"] == "sefa")
    assert len(sefa["names"]) == 2 and f"| sefa | #0 {sefa['names'][0]}; #1 {sefa['names'][1]} |" in text
    assert 1 / 6 <= sefa["purity"] <= 1


def test_odd_naming_options_are_named():
    G, reader = _two_factor_world()
    directions = DirectionSet(torch.eye(2))
    kw = dict(classifier=reader, factor_names=["a", "b"], num_latents=4)
    for bad, match in ((dict(factor_names=["a"]), "reads 2 factors but 1 factor_names"),  # was an IndexError
                       (dict(factor_kinds=["ordinal"]), "1 factor_kinds for 2 factor_names"),
                       (dict(num_latents=0), "num_latents >= 1"), (dict(batch_size=0), "batch_size >= 1"),
                       (dict(shifts=[0.0]), "at least one of them nonzero"),  # every direction read 'little change'
                       (dict(shifts=[float("nan"), 1.0]), "finite numbers"), (dict(sigmas=0.0), "sigmas must be")):
        with pytest.raises(ValueError, match=match):
            name_directions(G, directions, **{**kw, **bad})
