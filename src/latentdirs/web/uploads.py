"""Uploaded images in the explorer: check, invert once, then edit with the same sliders.

An upload arrives as JSON ``{"image": "data:image/png;base64,..."}`` (the app accepts only
JSON posts, which a form on another site cannot send). It is checked (PNG or JPEG by its
bytes, pixel size, decodable), centre-cropped and resized to the generator's size, inverted
once, and kept in memory under the hash of its bytes; edits of it are ``G.shifted``.
Flask is imported only inside :func:`add_upload_api`, so this module loads without it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import struct
import threading
import time
import zlib
from collections import OrderedDict

import torch

from ..inversion import Encoder, InversionError, image_to_tensor, invert, latent_prior, resolve_per_layer
from .images import RequestError, parse_amounts, parse_int, png_bytes

MAX_UPLOADS = 32              # inverted images kept; the oldest is forgotten first
MAX_UPLOAD_BYTES = 8 * 2**20  # a phone photo: JPEGs of 12-48 megapixels are 2-8 MB
MAX_UPLOAD_BODY = 4 * -(-MAX_UPLOAD_BYTES // 3) + 4096  # the JSON around it: base64 adds a third
MAX_UPLOAD_PIXELS = 50_000_000  # refused before decoding: a small file can declare a huge image
MIN_UPLOAD_SIDE = 16
_DECODING = threading.BoundedSemaphore(2)  # a 50-megapixel PNG decodes to 150 MB: two at a time at most
SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


def decode_upload(body, generator) -> tuple[torch.Tensor, str, bytes]:
    """JSON body -> ((1, C, H, W) image in [-1, 1], format, raw bytes), or a RequestError with the reason.

    Photos of any size up to the limits are decoded at about twice the generator's side (JPEGs by
    the decoder's own scaling, so a 12-megapixel photo is never held at full size), turned upright
    by their EXIF orientation, then centre-cropped and resized."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    text = body.get("image") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text:
        raise RequestError('send {"image": "data:image/png;base64,..."}')
    if text.startswith("data:"):
        text = text.split(",", 1)[-1]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("the image is not valid base64") from None
    if len(data) > MAX_UPLOAD_BYTES:
        raise RequestError(f"the image is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB", 413)
    kind = next((name for magic, name in SIGNATURES.items() if data.startswith(magic)), None)
    if kind is None:
        raise RequestError("upload a PNG or JPEG image", 415)
    side = 2 * max(generator.image_shape[1:])
    try:
        with _DECODING, Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            if min(opened.size) < MIN_UPLOAD_SIDE:
                raise RequestError(f"the image is {width}x{height}; sides must be at least {MIN_UPLOAD_SIDE} pixels")
            if width * height > MAX_UPLOAD_PIXELS:
                raise RequestError(f"the image is {width}x{height} = {width * height / 1e6:.0f} megapixels; the limit "
                                   f"is {MAX_UPLOAD_PIXELS / 1e6:.0f}", 413)
            scale = side / min(width, height)
            if kind == "JPEG" and scale < 1:
                opened.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
            opened.load()
            image = ImageOps.exif_transpose(opened)
            image = _eight_bit(image)
            if min(image.size) > side:
                image.thumbnail((max(1, round(image.width * side / min(image.size))),
                                 max(1, round(image.height * side / min(image.size)))), Image.LANCZOS)
            image = image.copy()
    except RequestError:
        raise
    except Image.DecompressionBombError as exc:
        raise RequestError(f"the {kind} file declares too many pixels: {exc}", 413) from None
    except UnidentifiedImageError:
        raise RequestError(f"the file starts like a {kind} but cannot be decoded as one") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
        if isinstance(exc, ValueError) and ("Decompressed" in str(exc) or "MAX_TEXT" in str(exc)):
            # a text or ICC chunk that inflates past PIL's limits: a decompression bomb
            raise RequestError(f"the {kind} file holds text or colour-profile chunks that inflate too far "
                               f"({exc})", 413) from None
        raise RequestError(f"the {kind} file cannot be decoded: {exc}") from None
    return image_to_tensor(image, generator, resize=True, what="the upload"), kind, data


def _eight_bit(image):
    """16-bit and float greyscale PNGs as 8-bit; other modes (CMYK, 1-bit, ...) as RGB."""
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if image.mode in ("P", "PA"):  # palette: keep its transparency, which image_to_tensor turns white
        return image.convert("RGBA")
    if image.mode.startswith(("I", "F")):
        import numpy as np
        from PIL import Image
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        return Image.fromarray((array.clip(0, top) * (255.0 / top)).round().astype(np.uint8), "L")
    return image.convert("RGB")


class UploadStore:
    """Inverted uploads by id, and their edited images as PNG bytes."""

    def __init__(self, generator, encoder: Encoder | None = None, steps: int = 200,
                 per_layer: bool | None = None) -> None:
        per_layer = resolve_per_layer(generator, per_layer)  # None: W+ wherever the generator has it
        self.generator, self.encoder, self.steps, self.per_layer = generator, encoder, steps, per_layer
        self._latents: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._errors: dict[str, float] = {}
        self._prior = None
        self._lock = threading.Lock()  # one inversion or render at a time: parallel passes only slow a small CPU

    def add(self, body) -> dict:
        images, kind, data = decode_upload(body, self.generator)
        upload_id = hashlib.sha256(data).hexdigest()[:16]
        start = time.time()
        with self._lock:
            if upload_id not in self._latents:
                self._prior = self._prior or latent_prior(self.generator)
                result = invert(self.generator, images.to(self.generator.device), encoder=self.encoder,
                                steps=self.steps, prior=self._prior, per_layer=self.per_layer, progress=False)
                self._latents[upload_id] = result.latents
                self._errors[upload_id] = result.pixel_error.item()
                while len(self._latents) > MAX_UPLOADS:
                    old, _ = self._latents.popitem(last=False)
                    self._errors.pop(old, None)
            self._latents.move_to_end(upload_id)
        return {"id": upload_id, "format": kind, "pixel_mse": round(self._errors.get(upload_id, float("nan")), 5),
                "seconds": round(time.time() - start, 2), "steps": self.steps, "per_layer": self.per_layer}

    def latent(self, upload_id: str | None) -> torch.Tensor:
        if not upload_id or upload_id not in self._latents:
            raise RequestError("unknown upload id (uploads are kept in memory; upload the image again)", 404)
        return self._latents[upload_id]

    def image(self, upload_id: str | None, served, amounts: dict[int, float], scale: int = 1) -> bytes:
        """PNG of G.shifted(w_upload, sum_k s_k h_k); no shift is the reconstruction."""
        from ..render import to_pil
        latent = self.latent(upload_id)
        # one shift per image: a per-layer (1, layers, d) latent moves every layer by it
        shift = served.directions.combine(torch.zeros(len(latent), self.generator.latent_dim), amounts).to(latent)
        with self._lock, torch.no_grad():
            picture = to_pil(self.generator.shifted(latent, shift))[0]
        if scale > 1:
            picture = picture.resize((picture.width * scale, picture.height * scale), resample=0)
        return png_bytes(picture)


def add_upload_api(app, state, encoder: Encoder | None = None, steps: int = 200,
                   per_layer: bool | None = None) -> UploadStore:
    """POST /api/upload and GET /api/upload/image on ``app`` (``state`` is the app's AppState)."""
    from flask import Response, jsonify, request
    try:
        store = UploadStore(state.renderer.generator, encoder, steps, per_layer)
    except InversionError as exc:
        raise ValueError(f"--per-layer: {exc}") from None
    if encoder is not None:
        try:
            encoder.check_compatible(store.generator)
        except InversionError as exc:
            raise ValueError(f"--encoder: {exc}") from None

    @app.post("/api/upload")
    def upload():
        """Invert an uploaded image: {"image": "data:image/png;base64,..."} -> {"id": ...}."""
        try:
            return jsonify(store.add(request.get_json(silent=True)))
        except InversionError as exc:
            raise RequestError(str(exc)) from None

    @app.get("/api/upload/image")
    def upload_image():
        """The upload edited: ?id=ID&set=NAME&shifts=0:2.5[&scale=4][&download=1]"""
        served = state.served(request.args.get("set"))
        amounts = parse_amounts(request.args.get("shifts"), served.directions.num_directions)
        text = request.args.get("scale")
        scale = state.renderer.default_scale() if text in (None, "") else parse_int(text, "scale", 1, 8)
        response = Response(store.image(request.args.get("id"), served, amounts, scale), mimetype="image/png")
        if request.args.get("download"):
            response.headers["Content-Disposition"] = 'attachment; filename="edited_upload.png"'
        return response

    return store
