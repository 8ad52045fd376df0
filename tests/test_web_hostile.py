"""Every endpoint of the web app against a table of hostile requests: a 4xx with a message, never a 500.

The endpoints are read from the app's url_map, so a new one is covered without editing this file:
GET endpoints get hostile query strings, POST endpoints hostile bodies (empty, not JSON, wrong types,
nested, huge, decompression bombs in uploads). Also here: identical renders computed once.
"""
from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib

import pytest
from PIL import Image

pytest.importorskip("flask")

from latentdirs import DirectionSet, load_generator  # noqa: E402
from latentdirs.web import images  # noqa: E402
from latentdirs.web.app import MAX_JSON_DEPTH, create_app  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    gen = load_generator("planted")
    ds = DirectionSet.random(gen.latent_dim, 3, seed=0)
    ds.meta["generator"] = gen.describe()
    ds.save(root / "setA" / "directions")
    return create_app([str(root / "setA")], db_path=root / "answers.sqlite", invert_steps=2)


@pytest.fixture()
def client(app):
    return app.test_client()


def endpoints(app, method: str) -> list[str]:
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if method in rule.methods and rule.endpoint != "static" and "<" not in rule.rule)


def _answers(client) -> int:
    return client.get("/api/results").get_json()["answers"]


def assert_refused(response, statuses=range(400, 500)) -> None:
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True)[:500])
    if response.mimetype == "application/json":
        assert response.get_json()["error"]


# -- GET: hostile query strings ------------------------------------------------------------------------
PARAMS = ["set", "seed", "shifts", "scale", "direction", "seeds", "assessor", "position", "id", "download"]
HOSTILE_VALUES = ["", "nope", "-1", "1e999", "nan", "inf", "0x10", "[]", "{}", "1:2:3:4", "0-99999999",
                  "\x00", "%ff", "9" * 400, "a" * 10_000, ",,,", ":", "0:1e308", "../../etc/passwd"]


def test_every_get_endpoint_answers_hostile_queries_without_a_500(app, client):
    gets = endpoints(app, "GET")
    assert {"/api/image", "/api/chart", "/api/rating/chart", "/api/upload/image"} <= set(gets)
    for url in gets:
        for value in HOSTILE_VALUES:
            query = "&".join(f"{name}={value}" for name in PARAMS)
            response = client.get(f"{url}?{query}")
            assert response.status_code < 500, (url, value, response.get_data(as_text=True)[:300])
            if url.startswith("/api/") and response.status_code >= 400:
                assert response.get_json()["error"]


@pytest.mark.parametrize("url", ["/api/image?set=setA", "/api/chart?set=setA&direction=0",
                                 "/api/rating/chart?assessor=ann", "/api/rating/item?assessor=ann",
                                 "/api/upload/image?set=setA"])
@pytest.mark.parametrize("value", ["nope", "-1", "nan", "9" * 400, "[]"])
def test_a_hostile_value_in_a_read_parameter_is_a_4xx(client, url, value):
    name = {"/api/image": "seed", "/api/chart": "seeds", "/api/upload/image": "id"}.get(url.split("?")[0], "position")
    assert_refused(client.get(f"{url}&{name}={value}"))


def test_a_wrong_method_is_a_4xx(app, client):
    for url in endpoints(app, "GET"):
        if "POST" not in next(r for r in app.url_map.iter_rules() if r.rule == url).methods:
            assert_refused(client.post(url, json={}))
    for url in endpoints(app, "POST"):
        assert_refused(client.delete(url))


# -- POST: hostile bodies --------------------------------------------------------------------------
def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


TRANSPORT = [  # refused by every POST endpoint, whatever it reads
    ("not json", {"data": b"image=1", "content_type": "application/x-www-form-urlencoded"}),
    ("text/plain", {"data": b'{"a": 1}', "content_type": "text/plain"}),
    ("invalid json", {"data": b'{"a": ', "content_type": "application/json"}),
    ("not utf-8", {"data": b'{"a": "\xff"}', "content_type": "application/json"}),
    ("nested 60 KB", {"data": _nested(30_000), "content_type": "application/json"}),
    ("nested objects", {"data": b'{"a":' * 5000 + b"1" + b"}" * 5000, "content_type": "application/json"}),
    ("huge", {"data": b'{"a": "' + b"x" * (12 * 2**20) + b'"}', "content_type": "application/json"}),
]


@pytest.mark.parametrize("what, request_args", TRANSPORT, ids=[t[0] for t in TRANSPORT])
def test_every_post_endpoint_refuses_a_malformed_body(app, client, what, request_args):
    posts = endpoints(app, "POST")
    assert {"/api/rating/answer", "/api/upload", "/api/apply-names"} <= set(posts)
    before = _answers(client)
    for url in posts:
        assert_refused(client.post(url, **request_args))
    assert _answers(client) == before


def test_nesting_within_the_limit_is_parsed_and_beyond_it_refused(client):
    ok = client.post("/api/rating/answer", data=_nested(MAX_JSON_DEPTH), content_type="application/json")
    deep = client.post("/api/rating/answer", data=_nested(MAX_JSON_DEPTH + 1), content_type="application/json")
    assert ok.status_code == 400 and "JSON object" in ok.get_json()["error"]  # parsed: a list, not an answer
    assert deep.status_code == 400 and "nested" in deep.get_json()["error"]
    brackets_in_a_string = {"assessor": "ann", "name": "[{" * 40, "position": 0, "consistent": True,
                            "single_factor": True}
    assert client.post("/api/rating/answer", json=brackets_in_a_string).status_code == 200  # text is not nesting


GOOD_ANSWER = {"assessor": "ann", "position": 0, "consistent": True, "single_factor": False, "category": "colour",
               "name": "hue"}
WRONG_TYPES = {  # every field with values of a type it must not take
    "assessor": [None, "", [], ["ann"], {"a": 1}, 5, 1.5, True],
    "position": [None, "0", [], [0], {}, 1.5, True, 10**30, -1],
    "consistent": [None, "true", 1, 0, [], [True], {}],
    "single_factor": [None, "false", 0, [], {}],
    "category": ["smell", ["colour"], {"a": 1}, 5, True],
    "name": [["hue"], {"a": "b"}, 5, 1.5, True, "x" * 500],
}
BODIES = [("a list", [1, 2]), ("a string", "answer"), ("a number", 5), ("null", None), ("an empty object", {})]


@pytest.mark.parametrize("field, value", [(f, v) for f, values in WRONG_TYPES.items() for v in values],
                         ids=[f"{f}={v!r}"[:40] for f, values in WRONG_TYPES.items() for v in values])
def test_an_answer_field_of_the_wrong_type_is_refused_and_not_stored(client, field, value):
    before = _answers(client)
    response = client.post("/api/rating/answer", json={**GOOD_ANSWER, field: value})
    assert_refused(response, (400,))
    assert _answers(client) == before


@pytest.mark.parametrize("what, body", BODIES, ids=[b[0] for b in BODIES])
@pytest.mark.parametrize("url", ["/api/rating/answer", "/api/upload"])
def test_a_body_that_is_not_the_expected_object_is_a_4xx(client, url, what, body):
    assert_refused(client.post(url, json=body))  # 400; null: the test client sends no body at all (415)


def test_the_good_answer_is_stored_once(client):
    before = _answers(client)
    for _ in range(3):
        assert client.post("/api/rating/answer", json=GOOD_ANSWER).status_code == 200
    assert _answers(client) == before + (0 if before else 1)


# -- uploads: wrong types and decompression bombs --------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(size=(32, 32), extra: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 140, 200)).save(buffer, format="PNG")
    data = buffer.getvalue()
    return data[:33] + extra + data[33:]  # after the signature and IHDR, before IDAT


def _ihdr_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _jpeg_declaring(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


INFLATED = zlib.compress(b"\x00" * (8 * 2**20), 9)  # 8 MB of text or ICC from 8 KB
BOMBS = [
    ("zTXt chunk", _png(extra=_chunk(b"zTXt", b"Comment\x00\x00" + INFLATED)), (413,)),
    ("iTXt chunk", _png(extra=_chunk(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + INFLATED)), (413,)),
    ("iCCP chunk", _png(extra=_chunk(b"iCCP", b"icc\x00\x00" + INFLATED)), (413,)),
    ("many text chunks", _png(extra=b"".join(_chunk(b"zTXt", b"k%d\x00\x00" % i + zlib.compress(b"\x00" * 2**19))
                                             for i in range(160))), (413,)),
    ("PNG of 2 gigapixels", _ihdr_only(50_000, 40_000), (413,)),
    ("PNG of 60 megapixels", _ihdr_only(10_000, 6_000), (413,)),
    ("JPEG of 4 gigapixels", _jpeg_declaring(65_000, 65_000), (413,)),
    ("PNG 1 px high", _ihdr_only(5000, 1), (400,)),
    ("truncated PNG", _png()[:60], (400,)),
    ("PNG signature then noise", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, (400,)),
    ("JPEG signature then noise", b"\xff\xd8\xff" + bytes(range(256)) * 4, (400,)),
    ("a GIF", b"GIF89a" + bytes(64), (415,)),
]


@pytest.mark.parametrize("what, data, statuses", BOMBS, ids=[b[0] for b in BOMBS])
def test_a_decompression_bomb_or_broken_image_is_refused(client, what, data, statuses):
    start = time.perf_counter()
    response = client.post("/api/upload", json={"image": "data:image/png;base64," + base64.b64encode(data).decode()})
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True)[:300])
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("value", [None, "", 5, [], ["data:image/png;base64,AAAA"], {"image": "x"},
                                   "data:image/png;base64,@@@", "data:,", "x" * 1000])
def test_an_upload_field_of_the_wrong_type_is_a_4xx(client, value):
    assert_refused(client.post("/api/upload", json={"image": value}))


# -- identical renders at once are computed once ---------------------------------------------------
def test_identical_chart_requests_render_once(app, monkeypatch):
    state = app.extensions["latentdirs"]
    renderer = images.Renderer(state.renderer.generator, cache_size=16)
    calls = []
    real_chart = images.chart

    def slow_chart(*args, **kwargs):
        calls.append(1)
        time.sleep(0.3)  # long enough that every request arrives while the first renders
        return real_chart(*args, **kwargs)

    monkeypatch.setattr(images, "chart", slow_chart)
    served = state.sets["setA"]
    results, errors = [], []

    def request():
        try:
            results.append(renderer.chart(served, 0, [0, 1], [-4.0, 0.0, 4.0]))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 16 and len(set(results)) == 1
    assert len(calls) == 1
    assert renderer.chart(served, 0, [0, 1], [-4.0, 0.0, 4.0]) == results[0] and len(calls) == 1  # then cached
    # a failed render is not cached and does not block the next request
    monkeypatch.setattr(images, "chart", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        renderer.chart(served, 1, [0], [0.0])
    monkeypatch.setattr(images, "chart", real_chart)
    assert renderer.chart(served, 1, [0], [0.0])[:8] == b"\x89PNG\r\n\x1a\n"
