"""The style-based shapes3d generator: training, export, and its Z / W / W+ spaces."""
import json

import pytest
import torch

from latentdirs.gan.stylegan import ModulatedConv, StyleGenerator, StyleNetworkConfig
from latentdirs.gan.train import GANTrainConfig, train_gan
from latentdirs.generators import load_generator
from latentdirs.generators.base import GeneratorError

TINY = dict(architecture="style", batch_size=4, latent_dim=8, base_channels=4, max_channels=8, mapping_layers=2,
            num_train_images=16, sample_every=2, checkpoint_every=2, log_every=1)


@pytest.fixture(scope="module", params=["style", "dcgan-w"])
def trained(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "run"
    config = GANTrainConfig(steps=3, r1_gamma=0.1, r1_every=2, bn_calibration_batches=1,
                         **{**TINY, "architecture": request.param})
    return out, train_gan(config, out, progress=False)


def test_modulated_conv_equals_conv_with_modulated_weights():
    torch.manual_seed(0)
    conv = ModulatedConv(5, 7, w_dim=6)
    x, w = torch.randn(2, 5, 8, 8), torch.randn(2, 6)
    styles = conv.affine(w)
    out = conv(x, w)
    for i in range(2):  # StyleGAN2's definition, one sample at a time: W' = W s, W'' = W' / ||W'||
        weight = conv.weight * conv.weight_gain * styles[i][None, :, None, None]
        weight = weight * torch.rsqrt(weight.square().sum((1, 2, 3), keepdim=True) + 1e-8)
        expected = torch.nn.functional.conv2d(x[i:i + 1], weight, padding=1) + conv.bias[None, :, None, None]
        expected = torch.nn.functional.leaky_relu(expected, 0.2) * 2 ** 0.5
        torch.testing.assert_close(out[i:i + 1], expected, rtol=1e-4, atol=1e-5)


def test_train_resume_and_export(trained, tmp_path):
    out, final = trained
    config = json.loads((final / "config.json").read_text())
    assert config["architecture"] in ("style", "dcgan-w") and config["training"]["steps"] == 3
    assert config["training"]["cpu_seconds"] > 0
    architecture = config["architecture"]
    tiny = {**TINY, "architecture": architecture, "bn_calibration_batches": 1}
    train_gan(GANTrainConfig(steps=4, r1_gamma=0.1, r1_every=2, **tiny), out, progress=False)  # resumes at 3
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 4
    history = json.loads((final / "config.json").read_text())["training"]["history"]
    assert [h["from_step"] for h in history] == [0, 3]  # both commands, so the weights say how they were made
    with pytest.raises(ValueError, match="different architecture"):
        train_gan(GANTrainConfig(steps=5, **{**tiny, "base_channels": 8}), out, progress=False)


def test_spaces_and_layer_restricted_shift(trained):
    _, final = trained
    gz = load_generator("shapes3d", str(final), space="z")
    gw = load_generator("shapes3d", str(final), space="w")
    gplus = load_generator("shapes3d", str(final), space="w+", layers=(0, 2))
    z = torch.randn(3, 8)
    w = gw.network.mapping(z)
    torch.testing.assert_close(gz(z), gw(w))  # the same image, reached from Z or from W
    torch.testing.assert_close(gplus(w), gw(w))
    shift = torch.randn(3, 8)
    torch.testing.assert_close(gw.shifted(w, shift), gw(w + shift))

    seen = {}  # the w each layer reads, recorded at the linear maps that turn it into that layer's style
    readers = (list(gplus.network.convs) if hasattr(gplus.network, "constant")
               else [gplus.network.fc_norm] + list(gplus.network.norms))
    hooks = [(reader.affine if hasattr(reader, "affine") else reader.scale).register_forward_hook(
        lambda m, i, o, k=k: seen.__setitem__(k, i[0].clone())) for k, reader in enumerate(readers)]
    gplus.shifted(w, shift)
    moved = dict(seen)
    gplus(w)
    for hook in hooks:
        hook.remove()
    assert len(seen) == gplus.network.num_ws
    for layer in range(gplus.network.num_ws):
        if layer < 2:
            torch.testing.assert_close(moved[layer], w + shift)
        else:
            assert torch.equal(moved[layer], seen[layer]), f"layer {layer} moved outside the range 0-2"
    # SeFa reads exactly the chosen layers' style affines
    assert gplus.first_layer_weight().shape == gplus.network.style_weights(range(0, 2)).shape
    assert gplus.first_layer_weight().shape[0] < gw.first_layer_weight().shape[0]
    assert gz.first_layer_weight().shape == (8, 8)


def test_bad_options_say_what_to_do(trained):
    _, final = trained
    with pytest.raises(GeneratorError, match="layers"):
        load_generator("shapes3d", str(final), space="w+", layers=(3, 99))
    with pytest.raises(GeneratorError, match="only applies"):
        load_generator("shapes3d", str(final), space="w", layers=(0, 2))
    with pytest.raises(GeneratorError, match="space"):
        load_generator("shapes3d", str(final), space="s")


def test_style_mixing_changes_only_later_layers():
    from latentdirs.gan.stylegan import mixed_styles
    generator = StyleGenerator(StyleNetworkConfig(latent_dim=8, base_channels=4, max_channels=8, mapping_layers=2))
    z = torch.randn(2, 8)
    ws = mixed_styles(generator, z, probability=1.0)
    assert ws.shape == (2, generator.num_ws, 8)
    first = generator.mapping(z)
    assert torch.equal(ws[:, 0], first)  # the first latent keeps the coarsest layer
    switched = [i for i in range(generator.num_ws) if not torch.equal(ws[:, i], first)]
    assert switched and switched == list(range(switched[0], generator.num_ws))  # one crossover, then the other
    assert torch.equal(mixed_styles(generator, z, probability=0.0), generator.broadcast(first))


def test_ground_truth_hook_renders_the_training_scenes(trained):
    _, final = trained
    truth = load_generator("shapes3d", str(final), space="w").ground_truth()
    assert truth.factor_names[:3] == ("floor_hue", "wall_hue", "object_hue") and len(truth.factor_sizes) == 6
    images, factors = truth.sample(3, 0)
    assert images.shape == (3, 3, 64, 64) and factors.shape == (3, 6)


def test_sigterm_checkpoints_and_resume_logs_each_step_once(tmp_path, monkeypatch):
    import signal

    from latentdirs.gan import train as train_module
    out = tmp_path / "run"
    real_update = train_module.update_ema
    calls = {"n": 0}

    def update_then_terminate(*args, **kwargs):
        real_update(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:  # as `kill` would, in the middle of a run
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(train_module, "update_ema", update_then_terminate)
    tiny = {**TINY, "checkpoint_every": 100, "architecture": "dcgan-w", "bn_calibration_batches": 1}
    final = train_gan(GANTrainConfig(steps=10, **tiny), out, progress=False)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3  # checkpointed although 3 % 100 != 0
    assert (final / "generator.safetensors").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone after the run

    with open(out / "metrics.jsonl", "a") as f:  # a row logged after the checkpoint, before a crash
        f.write(json.dumps({"step": 4, "loss_d": 0.0}) + "\n")
    monkeypatch.setattr(train_module, "update_ema", real_update)
    train_gan(GANTrainConfig(steps=5, **tiny), out, progress=False)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
