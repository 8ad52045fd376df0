import json

import numpy as np
import pytest
import torch
from PIL import Image

from latentdirs.inversion import (Encoder, InversionError, check_images, invert, latent_prior, load_image,
                                  train_encoder)


def _mse(a, b):
    return (a - b).pow(2).flatten(1).mean(1)


@pytest.fixture(scope="module")
def known(planted):
    latents = planted.sample_latents(6, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        return latents, planted(latents).clamp(-1, 1)


def test_inverting_a_generated_image_lands_closer_than_random_latents(planted, known):
    latents, images = known
    result = invert(planted, images, steps=60, num_starts=64, progress=False)
    assert result.latents.shape == latents.shape and result.images.shape == images.shape
    with torch.no_grad():
        random_error = _mse(planted(planted.sample_latents(6, generator=torch.Generator().manual_seed(99))), images)
    assert (result.pixel_error < random_error).all()
    assert (result.pixel_error <= result.initial_pixel_error + 1e-6).all()  # the optimization never makes it worse
    assert result.pixel_error.mean() < 0.5 * random_error.mean()
    assert torch.allclose(result.pixel_error, _mse(result.images, images), atol=1e-6)
    assert result.seconds_per_image > 0 and result.cpu_seconds_per_image > 0
    import latentdirs
    assert latentdirs.invert is invert  # the public name


def test_zero_steps_returns_the_first_guess_and_prior_is_reused(planted, known):
    _, images = known
    prior = latent_prior(planted, num_samples=512)
    result = invert(planted, images, steps=0, num_starts=32, prior=prior, progress=False)
    assert torch.allclose(result.pixel_error, result.initial_pixel_error)


def test_encoder_learns_from_generated_pairs_and_round_trips(planted, tmp_path):
    torch.manual_seed(0)
    fresh = planted.sample_latents(128, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        images = planted(fresh)
        untrained = Encoder.for_generator(planted, width=8)
        before = _mse(untrained(images), fresh).mean()
        pixel_before = _mse(planted(untrained(images)), images).mean()
    encoder = train_encoder(planted, steps=80, batch_size=32, lr=3e-3, width=8, progress=False)
    with torch.no_grad():
        after = _mse(encoder(images), fresh).mean()
        pixel_after = _mse(planted(encoder(images)), images).mean()
    # Some planted coordinates barely show in the image, so the latent error falls less than the pixel error.
    assert after < 0.85 * before and pixel_after < 0.7 * pixel_before
    encoder.save_pretrained(tmp_path / "enc")
    config = json.loads((tmp_path / "enc" / "encoder.json").read_text())
    assert config["format"] == "latentdirs.encoder/1" and config["latent_dim"] == planted.latent_dim
    assert config["generator"]["name"] == planted.name and config["training"]["steps"] == 80
    loaded = Encoder.from_pretrained(tmp_path / "enc")
    with torch.no_grad():
        assert torch.equal(loaded(images), encoder(images))
    # An encoder start beats no start at all: with it, a few steps already land closer than the encoder alone.
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the saved identity matches this generator: no warning
        result = invert(planted, images[:4], encoder=loaded, steps=20, progress=False)
    assert (result.pixel_error <= result.initial_pixel_error + 1e-6).all()


def test_encoder_folder_errors_are_clear(planted, tmp_path):
    with pytest.raises(InversionError, match="not an encoder folder"):
        Encoder.from_pretrained(tmp_path)
    enc = Encoder.for_generator(planted, width=4)
    enc.save_pretrained(tmp_path / "e")
    (tmp_path / "e" / "encoder.json").write_text("{not json")
    with pytest.raises(InversionError, match="not valid JSON"):
        Encoder.from_pretrained(tmp_path / "e")
    from latentdirs.inversion import EncoderConfig
    wrong = Encoder(EncoderConfig(latent_dim=planted.latent_dim + 1, image_size=32))
    with pytest.raises(InversionError, match="latent size"):
        invert(planted, torch.zeros(1, 3, 32, 32), encoder=wrong, progress=False)
    other = Encoder.for_generator(planted, width=4)
    other.meta["generator"] = {"name": "another-gan"}
    with pytest.warns(UserWarning, match="trained for"):
        invert(planted, torch.zeros(1, 3, 32, 32), encoder=other, steps=0, progress=False)


@pytest.mark.parametrize("images, message", [
    (torch.zeros(1, 1, 32, 32), "3-channel"),
    (torch.zeros(1, 3, 64, 64), "32x32 images, got 64x64"),
    (torch.full((1, 3, 32, 32), 200.0), "looks like 0..255"),
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "uint8"),
    (torch.zeros(1, 32, 32, 3), "channels-last"),
    (torch.full((1, 3, 32, 32), float("nan")), "NaN"),
    (torch.zeros(3, 32), r"\(N, C, H, W\)"),
    (np.zeros((1, 3, 32, 32)), "torch.Tensor"),
])
def test_bad_images_are_refused_with_a_reason(planted, images, message):
    with pytest.raises(InversionError, match=message):
        check_images(planted, images)


def test_bad_settings_are_refused(planted):
    with pytest.raises(InversionError, match="steps must be an integer >= 0"):
        invert(planted, torch.zeros(1, 3, 32, 32), steps=-1, progress=False)
    for scales, message in ((0, "scales must be a positive integer"), (5, "at least 4 pixels")):
        with pytest.raises(InversionError, match=message):  # 5: 32 pixels halved four times leaves 2
            invert(planted, torch.zeros(1, 3, 32, 32), scales=scales, progress=False)


def test_pixel_pyramid_averages_the_mse_of_each_resolution(planted, known):
    from latentdirs.inversion import _pyramid_mse
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    half = torch.nn.functional.avg_pool2d
    assert torch.allclose(_pyramid_mse(a, b, 1), _mse(a, b))
    expected = (_mse(a, b) + _mse(half(a, 2), half(b, 2)) + _mse(half(a, 4), half(b, 4))) / 3
    assert torch.allclose(_pyramid_mse(a, b, 3), expected)
    # With the pyramid, the optimization still reproduces a generated image (full-resolution error reported).
    latents, images = known
    result = invert(planted, images, steps=60, num_starts=64, scales=3, progress=False)
    assert (result.pixel_error <= result.initial_pixel_error + 1e-6).all()
    assert torch.allclose(result.pixel_error, _mse(result.images, images), atol=1e-6)
    assert result.settings["scales"] == 3


def test_restarts_keep_each_images_best_start(planted, known):
    latents, images = known
    one = invert(planted, images, steps=0, num_starts=64, progress=False)
    several = invert(planted, images, steps=0, num_starts=64, restarts=4, progress=False)
    # With no steps each image keeps the best of its 4 closest prior samples: the closest one.
    assert torch.allclose(several.latents, one.latents)
    optimized = invert(planted, images, steps=30, num_starts=64, restarts=3, progress=False)
    single = invert(planted, images, steps=30, num_starts=64, progress=False)
    assert optimized.latents.shape == latents.shape
    assert (optimized.pixel_error <= single.pixel_error + 1e-6).all()  # the first start is among the three
    assert optimized.settings["restarts"] == 3
    with pytest.raises(InversionError, match="restarts must be a positive integer"):
        invert(planted, images, restarts=0, progress=False)
    with pytest.raises(InversionError, match="at most num_starts"):
        invert(planted, images, restarts=9, num_starts=8, progress=False)


def test_load_image_checks_files(planted, tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(InversionError, match="not an image"):
        load_image(tmp_path / "text.png", planted)
    with pytest.raises(InversionError, match="no such image"):
        load_image(tmp_path / "missing.png", planted)
    Image.new("RGB", (48, 40), (255, 0, 0)).save(tmp_path / "big.png")
    with pytest.raises(InversionError, match="48x40.*--resize"):
        load_image(tmp_path / "big.png", planted)
    red = load_image(tmp_path / "big.png", planted, resize=True)
    assert red.shape == (1, 3, 32, 32) and torch.allclose(red[0, :, 5, 5], torch.tensor([1.0, -1.0, -1.0]))
    # Transparent pixels read as white, grey images get three channels.
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert torch.allclose(load_image(tmp_path / "clear.png", planted), torch.ones(1, 3, 32, 32))
    Image.new("L", (32, 32), 0).save(tmp_path / "grey.png")
    assert torch.allclose(load_image(tmp_path / "grey.png", planted), -torch.ones(1, 3, 32, 32))


@pytest.mark.slow
def test_shapes3d_encoder_start_beats_prior_samples():
    """On the shipped GAN, a briefly trained encoder's first guess is closer than random prior samples."""
    from latentdirs import load_generator
    G = load_generator("shapes3d")
    encoder = train_encoder(G, steps=300, batch_size=32, progress=False)
    latents = G.sample_latents(32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        images = G(latents).clamp(-1, 1)
    guess = invert(G, images, encoder=encoder, steps=0, progress=False)
    random = _mse(G(G.sample_latents(32, generator=torch.Generator().manual_seed(4))).clamp(-1, 1), images)
    assert guess.pixel_error.mean() < 0.5 * random.mean()
    refined = invert(G, images, encoder=encoder, steps=100, progress=False)
    assert refined.pixel_error.mean() < guess.pixel_error.mean()


def test_per_layer_inversion_needs_a_style_based_generator(planted, known):
    with pytest.raises(InversionError, match="style-based generator"):
        invert(planted, known[1], steps=1, per_layer=True, progress=False)


def test_an_empty_batch_is_refused_by_name(planted):
    # was torch's "min(): Expected reduction dim to be specified for input.numel() == 0"
    with pytest.raises(InversionError, match="no images to invert"):
        invert(planted, torch.zeros(0, 3, 32, 32), steps=0, progress=False)
