"""The shift protocol (issue 13): every stage moves along a direction through ``G.shifted``, so a
StyleGAN2 W+ layer range is honoured end to end; capabilities are protocol hooks, not name sniffing."""
from __future__ import annotations

import io
import json
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from PIL import Image

import latentdirs
from latentdirs.closed_form import sefa, sefa_from_weight
from latentdirs.directions import DirectionSet
from latentdirs.discovery import DiscoveryConfig, discover, reconstructor_accuracy
from latentdirs.evaluation.compare import compare
from latentdirs.evaluation.ground_truth import ground_truth_dataset
from latentdirs.generators import load_generator
from latentdirs.generators import Generator, GeneratorError, GroundTruth
from latentdirs.generators.planted import PlantedGenerator
from latentdirs.generators.stylegan2 import StyleGAN2Generator, StyleGAN2Network
from latentdirs.render import shifted_images

STYLE_DIM = 8
LAYERS = (0, 2)  # style layers 0 and 1 of the tiny network's 6
UNMOVED = 1e-5  # images in [-1, 1]: float noise across batch sizes is ~1e-7, a shift of 6 moves them ~1


def assert_unmoved(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=UNMOVED, rtol=0)


def tiny_network(seed: int = 0) -> StyleGAN2Network:
    """16x16 StyleGAN2 in the rosinality layout, N(0, 1) weights: 6 style layers of 8 values."""
    torch.manual_seed(seed)
    net = StyleGAN2Network(16, STYLE_DIM, 2, {4: 16, 8: 16, 16: 8})
    for name, param in net.named_parameters():
        if name.endswith("noise.weight"):
            param.data.fill_(0.1)  # constructed as zeros, trained to nonzero
    return net


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stylegan2") / "tiny.pt"
    torch.save({"g_ema": tiny_network().state_dict()}, path)  # convert_weight.py layout
    return path


@pytest.fixture(scope="module")
def w_plus(tiny_file):
    return load_generator("stylegan2", tiny_file, space="w+", layers=LAYERS)


@contextmanager
def recorded_styles(network: StyleGAN2Network):
    """{style layer: [input of each modulation reading it, per call]}: the styles the synthesis really used."""
    seen: dict[int, list[torch.Tensor]] = {}

    def hook(layer):
        return lambda module, args: seen.setdefault(layer, []).append(args[0].detach().clone())
    handles = [conv.modulation.register_forward_pre_hook(hook(layer))
               for layer in range(network.n_latent) for conv in network.modulations_reading(layer)]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def test_w_plus_shift_leaves_the_styles_of_other_layers_bit_identical(w_plus):
    w = w_plus.sample_latents(4, generator=torch.Generator().manual_seed(1))
    shift = 3 * torch.randn(4, STYLE_DIM, generator=torch.Generator().manual_seed(2))
    network = w_plus.network
    with torch.no_grad(), recorded_styles(network) as base:
        w_plus(w)
    with torch.no_grad(), recorded_styles(network) as moved:
        images = w_plus.shifted(w, shift)
    assert sorted(base) == sorted(moved) == list(range(network.n_latent))
    for layer in range(network.n_latent):
        for before, after in zip(base[layer], moved[layer]):
            if layer < LAYERS[1]:
                assert not torch.allclose(before, after), f"layer {layer} is in the range and must move"
            else:
                assert torch.equal(before, after), f"layer {layer} is outside the range and must not move"
    with torch.no_grad():
        assert not torch.allclose(images, w_plus(w), atol=1e-4)
        # the same network in plain W: the same shift moves every layer (the hook sees it)
        plain = StyleGAN2Generator(network, space="w").freeze()
        with recorded_styles(network) as everywhere:
            plain.shifted(w, shift)
    assert all(not torch.allclose(b, a) for layer in base for b, a in zip(base[layer], everywhere[layer]))


def test_discover_in_w_plus_learns_and_its_charts_move_only_those_layers(w_plus):
    cfg = DiscoveryConfig(num_directions=4, batch_size=32)
    found = discover(w_plus, num_directions=4, steps=50, batch_size=32, lr=1e-3, seed=0, progress=False,
                     device="cpu", importance_latents=4)
    accuracy = reconstructor_accuracy(w_plus, found.direction_matrix, found.reconstructor, cfg, num_batches=4)
    assert accuracy > 0.5, f"held-out accuracy {accuracy:.2f}, chance is 0.25"
    assert found.directions.meta["generator"]["latent_space"] == "w+"
    assert found.directions.meta["generator"]["layers"] == list(LAYERS)

    latents = w_plus.sample_latents(3, generator=torch.Generator().manual_seed(5))
    shifts = (-4.0, 0.0, 4.0)
    for k in range(found.directions.num_directions):
        with recorded_styles(w_plus.network) as seen:
            chart = shifted_images(w_plus, latents, found.directions[k], shifts)
        assert chart.shape[:2] == (3, 3)
        for layer, calls in seen.items():
            styles = calls[0].view(len(shifts), len(latents), STYLE_DIM)  # rows ordered shift-major
            if layer < LAYERS[1]:
                assert not torch.allclose(styles[0], styles[2]), f"direction {k}: layer {layer} should move"
            else:
                # rows of one batch may sit in different GEMM tiles: equal within float noise
                assert torch.allclose(styles[0], styles[1], atol=UNMOVED, rtol=0) \
                    and torch.allclose(styles[2], styles[1], atol=UNMOVED, rtol=0), \
                    f"direction {k}: layer {layer} moved in the chart"


def test_compare_runs_sefa_and_ld_on_the_same_w_plus_layers(w_plus, tmp_path):
    out = tmp_path / "compare"
    comparison = compare(w_plus, k=3, seeds=(0,), methods=("sefa", "ld-unit"), out_dir=out, progress=False,
                         ld_steps=20, batch_size=16, rca_steps=10, gt_train=0, device="cpu")
    assert {r["method"] for r in comparison.results if "error" not in r and "rca" in r} == {"sefa", "ld-unit"}
    assert json.loads((out / "config.json").read_text())["generator"]["layers"] == list(LAYERS)
    sets = {m: DirectionSet.load(out / m / "seed0" / "directions") for m in ("sefa", "ld-unit")}
    for method, directions in sets.items():
        assert directions.meta["generator"]["latent_space"] == "w+", method
        assert directions.meta["generator"]["layers"] == list(LAYERS), method
    # SeFa factorizes the modulation weights of exactly the convolutions reading layers 0 and 1
    # (conv1 reads layer 0, convs.0 layer 1; toRGBs left out), named as in the checkpoint
    state = w_plus.network.state_dict()
    expected, _ = sefa_from_weight(torch.cat([state["conv1.conv.modulation.weight"],
                                              state["convs.0.conv.modulation.weight"]]), 3)
    assert torch.allclose(sets["sefa"].matrix, expected, atol=1e-5)
    later = StyleGAN2Generator(w_plus.network, space="w+", layers=(2, 4)).freeze()
    assert not torch.allclose(sefa(later, 3).matrix, expected, atol=1e-3)


class ShiftBlindPlanted(PlantedGenerator):
    """Planted scenes whose ``shifted`` ignores the shift: a stage that still sees a change bypassed it."""

    def __init__(self) -> None:
        super().__init__(latent_dim=8, image_size=32, seed=0)
        self.shift_calls = self.trained_shift_calls = 0

    def shifted(self, latent, shift):
        shift = self.check_shift(latent, shift)
        self.shift_calls += 1
        self.trained_shift_calls += int(shift.requires_grad)
        return self(latent)


@pytest.fixture
def blind():
    return ShiftBlindPlanted().freeze()


def test_every_stage_moves_through_generator_shifted(blind, tmp_path):
    from latentdirs.evaluation.diversity import change_fields, collapse_ratios
    from latentdirs.evaluation.rca import rca
    from latentdirs.importance import image_change_scores
    from latentdirs.saliency.direction import rank_directions
    from latentdirs.saliency.masks import MaskConfig, synthesize, threshold_masks
    from latentdirs.web.images import Renderer, ServedSet

    directions = DirectionSet.random(8, 3, seed=0)
    z = blind.sample_latents(4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = blind(z)
        moved = PlantedGenerator.shifted(blind, z, 6 * directions[0])  # what a real shift does
    assert (moved - base).abs().max() > 100 * UNMOVED, "the tolerance must be far below a real shift"
    # Rendered at other batch sizes, so equal within float noise, not bit for bit (AMX kernels differ).
    charts = shifted_images(blind, z, directions[0], (-6, 0, 6))
    for j in range(3):
        assert_unmoved(charts[:, j], base)
    assert_unmoved(image_change_scores(blind, directions.matrix, num_latents=4), torch.zeros(3))
    assert change_fields(blind, directions.matrix, num_latents=4).abs().max() <= UNMOVED
    assert torch.allclose(collapse_ratios(blind, directions.matrix, num_latents=4), torch.ones(3))
    _, masks, _ = synthesize(blind, directions[0], z, MaskConfig(shift=6.0))
    disagree = (masks.squeeze(1).bool() != threshold_masks(base)).float().mean()
    assert disagree <= 1e-3, f"{disagree:.4f} of mask pixels differ; only pixels at the threshold may flip"
    with pytest.warns(UserWarning, match="no direction gives masks"):  # nothing whitens: G(z) itself is the mask image
        ranking = rank_directions(blind, directions, num_latents=4, shifts=(6.0,))
    assert all(abs(c.object_change) <= UNMOVED for c in ranking.candidates)
    renderer = Renderer(blind, cache_size=0)
    served = ServedSet("set", tmp_path, directions)
    slid, still = (np.asarray(Image.open(io.BytesIO(renderer.image(served, 3, amounts))), dtype=int)
                   for amounts in ({0: 5.0, 2: -5.0}, {}))
    assert np.abs(slid - still).max() <= 1  # one 8-bit level: float noise may round either way

    calls = blind.shift_calls
    found = discover(blind, num_directions=3, steps=3, batch_size=12, seed=0, progress=False, device="cpu",
                     importance_latents=2)
    assert blind.trained_shift_calls > 0, "the trained pass of discovery must go through shifted"
    assert_unmoved(found.directions.scores, torch.zeros(3))  # importance saw no change either
    before = blind.shift_calls
    rca(blind, directions, steps=2, batch_size=12, device="cpu")
    assert blind.shift_calls > before > calls


def test_default_shift_is_the_latent_plus_the_shift_and_bad_shapes_are_refused(planted):
    z = planted.sample_latents(3, generator=torch.Generator().manual_seed(0))
    h = torch.randn(planted.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(planted.shifted(z, 2 * h), planted(z + 2 * h))  # one vector for the batch
        assert torch.equal(planted.shifted(z, h.expand_as(z)), planted(z + h))
    with pytest.raises(GeneratorError, match=r"a shift must be \(batch=3, 16\) or \(16,\)"):
        planted.shifted(z, torch.zeros(2, planted.latent_dim))
    with pytest.raises(GeneratorError, match="a shift must be"):
        planted.shifted(z, torch.zeros(5))


def test_directions_are_not_rendered_in_another_space_or_layer_range(w_plus):
    from latentdirs.render import chart
    directions = sefa(w_plus, 2)  # records w+ layers 0-2
    assert chart(w_plus, directions, 0, num_latents=1).width > 0
    for other, where in ((StyleGAN2Generator(w_plus.network, space="w+", layers=(2, 4)), "w\\+ layers 2-4"),
                         (StyleGAN2Generator(w_plus.network, space="w"), "w:")):
        with pytest.raises(GeneratorError, match=rf"found in space w\+ layers 0-2, but stylegan2 moves in space {where}"
                                                 rf".*--space w\+ --layers 0-2"):
            chart(other.freeze(), directions, 0, num_latents=1)
    assert chart(w_plus, DirectionSet.random(STYLE_DIM, 2), 0, num_latents=1).width > 0  # records no space


def test_layer_range_and_space_errors_are_clear(tiny_file, tmp_path):
    with pytest.raises(GeneratorError, match=r"need 0 <= start < stop <= 6 \(this generator has 6 style layers"):
        load_generator("stylegan2", tiny_file, space="w+", layers=(2, 9))
    with pytest.raises(GeneratorError, match="layers=.*'0-4'"):
        load_generator("stylegan2", tiny_file, space="w+", layers="first-four")
    with pytest.raises(GeneratorError, match=r"only applies to space='w\+' \(got space='z'\)"):
        load_generator("stylegan2", tiny_file, space="z", layers=(0, 2))
    from latentdirs.cli import main
    with pytest.raises(SystemExit, match="does not take these options"):  # a DCGAN has no W space
        main(["discover", "--generator", "planted", "--space", "w+", "--layers", "0-2", "--out", str(tmp_path / "a")])


def test_stylegan2_cli_rejects_an_out_of_range_layer_range(tiny_file, tmp_path, capsys):
    from latentdirs.cli import main
    code = main(["discover", "--generator", "stylegan2", "--checkpoint", str(tiny_file), "--space", "w+",
                 "--layers", "4-8", "--steps", "1", "--out", str(tmp_path / "run")])
    assert code == 2
    assert "6 style layers" in capsys.readouterr().err


# -- hooks instead of name / hasattr sniffing ----------------------------------------------
def test_ground_truth_comes_from_the_generator_hook():
    class Bars(Generator):
        """A user's generator that renders scenes with one known factor (bar position, 4 values)."""

        latent_dim, name = 2, "bars"

        def synthesize(self, latent):
            return torch.tanh(latent[:, :1, None, None]).expand(-1, 1, 16, 16)

        def ground_truth(self):
            def sample(num, seed):
                factors = torch.randint(4, (num, 1), generator=torch.Generator().manual_seed(seed))
                return factors.float().view(num, 1, 1, 1).expand(-1, 1, 16, 16) / 2 - 1, factors
            return GroundTruth(("bar",), (4,), sample)

    images, factors, names = ground_truth_dataset(Bars(), 10, seed=3)
    assert names == ["bar"] and factors.shape == (10, 1) and factors.dtype == np.int64
    assert torch.equal(images[:, 0, 0, 0], torch.as_tensor(factors[:, 0]).float() / 2 - 1)

    class BadBars(Bars):
        def ground_truth(self):
            return GroundTruth(("bar",), (2,), super().ground_truth().sample)  # sizes too small for values 0..3
    with pytest.raises(GeneratorError, match=r"factor values must lie in 0 \.\. size - 1"):
        ground_truth_dataset(BadBars(), 50)
    wrapped = latentdirs.wrap(lambda z: torch.tanh(z[:, :3, None, None]).expand(-1, -1, 16, 16), latent_dim=4)
    with pytest.raises(GeneratorError, match=r"implement ground_truth\(\) in its adapter"):
        ground_truth_dataset(wrapped, 10)


def test_shapes3d_generators_describe_the_factors_they_were_trained_on(planted):
    plain, fade = load_generator("shapes3d").ground_truth(), load_generator("shapes3d-fade").ground_truth()
    assert plain.factor_names[-1] == "orientation" and len(plain.factor_sizes) == 6
    assert fade.factor_names[-1] == "background_fade" and len(fade.factor_sizes) == 7
    images, factors, names = ground_truth_dataset(load_generator("shapes3d-fade"), 4)
    assert images.shape == (4, 3, 64, 64) and factors.shape == (4, 7) and names[-1] == "background_fade"
    _, factors, names = ground_truth_dataset(planted, 20)
    assert len(names) == 5 and factors.shape == (20, 5) and factors.max() <= 9


def test_per_layer_styles_are_latents_of_w_and_w_plus(tiny_file, w_plus):
    """W+ inversion's per-layer styles (batch, num_ws, dim) render and shift like a single w where equal,
    and a shift in w+ moves only the range's layers, keeping every other layer's own style."""
    w_space = load_generator("stylegan2", tiny_file, space="w")
    w = w_space.sample_latents(3, generator=torch.Generator().manual_seed(0))
    shift = torch.randn(STYLE_DIM, generator=torch.Generator().manual_seed(1))
    for generator in (w_space, w_plus):
        same = generator.styles(w).clone()
        assert same.shape == (3, generator.num_ws, STYLE_DIM)
        assert torch.allclose(generator(same), generator(w), atol=1e-5)
        assert torch.allclose(generator.shifted(same, shift), generator.shifted(w, shift), atol=1e-5)
    styles = torch.randn(3, w_plus.num_ws, STYLE_DIM, generator=torch.Generator().manual_seed(2))
    with recorded_styles(w_plus.network) as seen:
        w_plus.shifted(styles, shift)
    for layer, inputs in seen.items():
        moved = styles[:, layer] + shift if LAYERS[0] <= layer < LAYERS[1] else styles[:, layer]
        assert all(torch.allclose(x, moved) for x in inputs), layer
    with pytest.raises(GeneratorError, match=r"per-layer styles must be \(batch, 6, 8\)"):
        w_plus(torch.zeros(2, 5, STYLE_DIM))
    with pytest.raises(GeneratorError, match="w or w\\+ space only"):
        load_generator("stylegan2", tiny_file)(torch.zeros(2, 6, STYLE_DIM))


def test_per_layer_inversion_matches_what_one_w_cannot(tiny_file):
    """An image made from six different styles: one w per layer gets closer than a single w in the
    same steps, the result renders and edits through the generator, and Z or non-style generators refuse."""
    from latentdirs.editing import edit_strip
    from latentdirs.inversion import InversionError, invert
    path = tiny_file
    generator = load_generator("stylegan2", path, space="w")
    rng = torch.Generator().manual_seed(3)
    per_layer_truth = generator.sample_latents(4 * generator.num_ws, generator=rng).view(4, generator.num_ws, -1)
    with torch.no_grad():
        target = generator(per_layer_truth).clamp(-1, 1)
    single = invert(generator, target, steps=60, num_starts=32, progress=False)
    layered = invert(generator, target, steps=60, num_starts=32, per_layer=True, progress=False)
    assert single.latents.shape == (4, 8) and layered.latents.shape == (4, generator.num_ws, 8)
    assert layered.settings["per_layer"] and layered.pixel_error.mean() < 0.8 * single.pixel_error.mean()
    assert torch.allclose(layered.images, generator(layered.latents).clamp(-1, 1), atol=1e-5)
    strip = edit_strip(generator, layered.latents, DirectionSet.random(8, 2, seed=0), 1, [-2, 0, 2])
    assert strip.shape == (4, 3, *target.shape[1:])
    assert torch.allclose(strip[:, 1], layered.images, atol=1e-5)
    with pytest.raises(InversionError, match="w or w\\+ space"):
        invert(load_generator("stylegan2", path), target, steps=1, per_layer=True, progress=False)


def test_edit_command_inverts_per_layer(tiny_file, tmp_path, capsys):
    from safetensors.torch import load_file
    from latentdirs.cli import main
    from latentdirs.render import to_pil
    generator = load_generator("stylegan2", tiny_file, space="w")
    with torch.no_grad():
        image = generator(generator.sample_latents(1, generator=torch.Generator().manual_seed(4))).clamp(-1, 1)
    to_pil(image)[0].save(tmp_path / "scene.png")
    directions = DirectionSet.random(STYLE_DIM, 3, seed=0)
    directions.meta["generator"] = generator.describe()
    directions.save(tmp_path / "set")
    common = ["edit", str(tmp_path / "scene.png"), "--directions", str(tmp_path / "set"), "--direction", "2",
              "--shift", "-2,0,2", "--steps", "3", "--num-starts", "4", "--threads", "1"]
    assert main(common + ["--per-layer", "--out", str(tmp_path / "out")]) == 0
    assert load_file(str(tmp_path / "out" / "scene_latent.safetensors"))["latent"].shape == (1, 6, STYLE_DIM)
    assert (tmp_path / "out" / "scene_d2.png").is_file()
    # by default a generator in w is inverted per layer; --no-per-layer keeps one w
    assert main(common + ["--out", str(tmp_path / "auto")]) == 0
    assert "one latent per layer" in capsys.readouterr().out
    assert load_file(str(tmp_path / "auto" / "scene_latent.safetensors"))["latent"].shape == (1, 6, STYLE_DIM)
    assert main(common + ["--no-per-layer", "--out", str(tmp_path / "one")]) == 0
    assert load_file(str(tmp_path / "one" / "scene_latent.safetensors"))["latent"].shape == (1, STYLE_DIM)
    # directions found in Z cannot move per-layer styles: exit 2 with the reason, nothing written
    directions.meta["generator"] = load_generator("stylegan2", tiny_file).describe()
    directions.save(tmp_path / "zset")
    common[3] = str(tmp_path / "zset")
    assert main(common + ["--per-layer", "--out", str(tmp_path / "o2")]) == 2
    assert "w or w+ space" in capsys.readouterr().err and not (tmp_path / "o2").exists()
    # ... and without the flag they are edited through one latent, as before
    assert main(common + ["--out", str(tmp_path / "z")]) == 0
    assert load_file(str(tmp_path / "z" / "scene_latent.safetensors"))["latent"].shape == (1, STYLE_DIM)
