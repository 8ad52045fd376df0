"""Uploading an image to the explorer: checks, inversion, sliders on it."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("flask")

from latentdirs import DirectionSet, load_generator  # noqa: E402
from latentdirs.render import to_pil  # noqa: E402
from latentdirs.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("upload")
    gen = load_generator("planted")
    ds = DirectionSet.random(gen.latent_dim, 3, seed=0)
    ds.meta["generator"] = gen.describe()
    ds.save(root / "setA" / "directions")
    return create_app([str(root / "setA")], db_path=root / "a.sqlite", invert_steps=5)


@pytest.fixture()
def client(app):
    return app.test_client()


def _data_url(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def _scene(seed: int = 1) -> Image.Image:
    gen = load_generator("planted")
    with torch.no_grad():
        return to_pil(gen(gen.sample_latents(1, generator=torch.Generator().manual_seed(seed))))[0]


def test_upload_is_inverted_and_edited_with_the_sliders(client):
    response = client.post("/api/upload", json={"image": _data_url(_scene())})
    assert response.status_code == 200, response.get_data(as_text=True)
    info = response.get_json()
    assert info["format"] == "PNG" and len(info["id"]) == 16 and info["pixel_mse"] >= 0
    # The same bytes again: same id, no second inversion needed.
    assert client.post("/api/upload", json={"image": _data_url(_scene())}).get_json()["id"] == info["id"]
    plain = client.get(f"/api/upload/image?id={info['id']}&set=setA&scale=1")
    moved = client.get(f"/api/upload/image?id={info['id']}&set=setA&shifts=0:6,2:-4&scale=1")
    for response in (plain, moved):
        assert response.status_code == 200 and response.mimetype == "image/png"
    assert Image.open(io.BytesIO(plain.data)).size == (32, 32)
    assert plain.data != moved.data
    # The inverted upload resembles the upload: its error is a fraction of what the closest of 16
    # random latents gets (measured on scenes 1-5: 0.0002-0.0021 against 0.0045-0.0152 in [0, 1]
    # pixels; this scene 0.0003 against 0.0045). pixel_mse is the server's own, in [-1, 1] units.
    def pixels(image):
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255

    upload = pixels(_scene())
    error = ((pixels(Image.open(io.BytesIO(plain.data))) - upload) ** 2).mean()
    gen = load_generator("planted")
    with torch.no_grad():
        random = to_pil(gen(gen.sample_latents(16, generator=torch.Generator().manual_seed(99))))
    bound = min(((pixels(image) - upload) ** 2).mean() for image in random)
    assert error < 0.5 * bound, (error, bound)
    assert info["pixel_mse"] < 4 * 0.5 * bound, (info["pixel_mse"], bound)
    # A JPEG of another size is cropped and resized.
    big = _scene(2).resize((80, 60))
    assert client.post("/api/upload", json={"image": _data_url(big, "JPEG")}).get_json()["format"] == "JPEG"


@pytest.mark.parametrize("body, status, message", [
    ({"image": base64.b64encode(b"GIF89a" + b"\0" * 40).decode()}, 415, "PNG or JPEG"),
    ({"image": "data:image/png;base64,@@@"}, 400, "base64"),
    ({"picture": "x"}, 400, "data:image/png;base64"),
    ({"image": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10).decode()}, 400, "cannot be decoded"),
])
def test_bad_uploads_get_a_clear_4xx(client, body, status, message):
    response = client.post("/api/upload", json=body)
    assert response.status_code == status and message in response.get_json()["error"]


def test_upload_size_limits(client):
    tiny = Image.new("RGB", (8, 8), "red")
    response = client.post("/api/upload", json={"image": _data_url(tiny)})
    assert response.status_code == 400 and "8x8" in response.get_json()["error"]
    huge = Image.new("1", (10_000, 6_000))  # 60 megapixels in a few KB of PNG: refused before decoding
    response = client.post("/api/upload", json={"image": _data_url(huge)})
    assert response.status_code == 413 and "megapixels" in response.get_json()["error"]
    too_many_bytes = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(9 * 2**20)).decode()
    assert client.post("/api/upload", json={"image": too_many_bytes}).status_code == 413
    raw = io.BytesIO()
    _scene().save(raw, format="PNG")
    form = client.post("/api/upload", data=raw.getvalue(), content_type="image/png")
    assert form.status_code == 415  # only JSON posts, as for every other endpoint


def test_a_phone_photo_of_a_few_mb_is_accepted_and_downscaled(client, monkeypatch):
    # A 12-megapixel JPEG of ~3 MB, upright only after its EXIF orientation (6: rotate 90 degrees).
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 4000, dtype=np.float32)
    pixels = (ramp[None, :, None] * np.ones((3000, 1, 3)) + rng.normal(0, 24, (3000, 4000, 3))).clip(0, 255)
    photo = Image.fromarray(pixels.astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=85, exif=exif)
    assert 1.5 * 2**20 < len(buffer.getvalue()) < 8 * 2**20
    from latentdirs.web import uploads
    seen = []
    original = uploads.image_to_tensor
    monkeypatch.setattr(uploads, "image_to_tensor", lambda image, *a, **k: seen.append(image.size) or original(image, *a, **k))
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    response = client.post("/api/upload", json={"image": url})
    assert response.status_code == 200, response.get_data(as_text=True)
    (width, height), = seen
    assert width < height and min(width, height) <= 2 * 32 * 2  # upright (portrait), decoded at about 2x 32 px
    # a 512 x 512 PNG photo the size of skimage's astronaut (773 KB)
    png = io.BytesIO()
    Image.fromarray(pixels[:512, :512].astype(np.uint8)).save(png, format="PNG")
    assert len(png.getvalue()) > 600 * 1024
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    assert client.post("/api/upload", json={"image": url}).status_code == 200


def test_upload_image_needs_a_known_id_and_set(client):
    assert client.get("/api/upload/image?id=nope&set=setA").status_code == 404
    info = client.post("/api/upload", json={"image": _data_url(_scene(3))}).get_json()
    assert client.get(f"/api/upload/image?id={info['id']}&set=nope").status_code == 404
    assert client.get(f"/api/upload/image?id={info['id']}&set=setA&shifts=0:99").status_code == 400


def test_explorer_page_offers_the_upload(client):
    page = client.get("/").get_data(as_text=True)
    assert 'id="upload"' in page and "image/png,image/jpeg" in page


def test_per_layer_upload_inverts_in_w_plus_and_moves_every_layer(tmp_path):
    gen = load_generator("shapes3d", space="w")
    ds = DirectionSet.random(gen.latent_dim, 2, seed=0)
    ds.meta["generator"] = gen.describe()
    ds.save(tmp_path / "setW" / "directions")
    app = create_app([str(tmp_path / "setW")], db_path=tmp_path / "w.sqlite", invert_steps=3, per_layer=True)
    client = app.test_client()
    with torch.no_grad():
        scene = to_pil(gen(gen.sample_latents(1, generator=torch.Generator().manual_seed(3))))[0]
    info = client.post("/api/upload", json={"image": _data_url(scene)}).get_json()
    assert info["per_layer"] is True
    plain = client.get(f"/api/upload/image?id={info['id']}&set=setW&scale=1")
    moved = client.get(f"/api/upload/image?id={info['id']}&set=setW&shifts=1:3&scale=1")
    assert plain.status_code == moved.status_code == 200, moved.get_data(as_text=True)
    assert plain.data != moved.data
    latent = app.extensions["latentdirs_uploads"].latent(info["id"])
    assert latent.shape == (1, gen.num_ws, gen.latent_dim)
    # the slider moves every layer's w by the same vector: the served image is G.shifted(w+, 3 h_1)
    with torch.no_grad():
        expected = to_pil(gen.shifted(latent, 3 * ds[1][None]))[0]
    served = np.asarray(Image.open(io.BytesIO(moved.data)).convert("RGB"), dtype=int)
    assert np.abs(served - np.asarray(expected.convert("RGB"), dtype=int)).max() <= 1  # float noise rounds either way


def test_per_layer_upload_is_refused_where_there_are_no_layers(tmp_path):
    gen = load_generator("planted")
    ds = DirectionSet.random(gen.latent_dim, 2, seed=0)
    ds.meta["generator"] = gen.describe()
    ds.save(tmp_path / "setP" / "directions")
    with pytest.raises(ValueError, match="--per-layer: per-layer inversion needs a style-based generator"):
        create_app([str(tmp_path / "setP")], db_path=tmp_path / "p.sqlite", per_layer=True)


def test_uploads_are_inverted_per_layer_by_default_wherever_the_generator_has_layers(tmp_path):
    for kind, options, expected in [("shapes3d", {"space": "w"}, True), ("shapes3d", {}, False), ("planted", {}, False)]:
        gen = load_generator(kind, **options)
        ds = DirectionSet.random(gen.latent_dim, 2, seed=0)
        ds.meta["generator"] = gen.describe()
        ds.save(tmp_path / f"{kind}{options}" / "directions")
        app = create_app([str(tmp_path / f"{kind}{options}")], db_path=tmp_path / "d.sqlite")
        assert app.extensions["latentdirs_uploads"].per_layer is expected, (kind, options)
        assert create_app([str(tmp_path / f"{kind}{options}")], db_path=tmp_path / "d.sqlite",
                          per_layer=False).extensions["latentdirs_uploads"].per_layer is False
