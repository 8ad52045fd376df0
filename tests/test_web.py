"""The web app through Flask's test client: endpoints, refusals, the rating protocol, MOS."""
from __future__ import annotations

import csv
import io
import json

import pytest
from PIL import Image

pytest.importorskip("flask")

from latentdirs import DirectionSet, load_generator  # noqa: E402
from latentdirs.cli import main  # noqa: E402
from latentdirs.web import ratings  # noqa: E402
from latentdirs.web.app import create_app  # noqa: E402
from latentdirs.web.images import load_sets  # noqa: E402


def _save_set(path, generator, num_directions, seed):
    ds = DirectionSet.random(generator.latent_dim, num_directions, seed=seed)
    ds.meta["generator"] = generator.describe()
    ds.save(path / "directions")  # laid out like a run folder
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    gen = load_generator("planted")
    return [_save_set(root / "setA", gen, 3, 0), _save_set(root / "setB", gen, 3, 1)]


@pytest.fixture()
def app(runs, tmp_path):
    return create_app([str(r) for r in runs], db_path=tmp_path / "answers.sqlite")


@pytest.fixture()
def client(app):
    return app.test_client()


def _png(response) -> Image.Image:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/png"
    return Image.open(io.BytesIO(response.data))


# -- explorer --------------------------------------------------------------------------
def test_sets_lists_names_and_generator(client):
    info = client.get("/api/sets").get_json()
    assert [s["name"] for s in info["sets"]] == ["setA", "setB"]
    assert info["sets"][0]["names"] == ["", "", ""]
    assert info["generator"]["name"] == "planted" and info["generator"]["latent_dim"] == 16


def test_image_follows_sliders_and_is_cached(client, app):
    base = client.get("/api/image?set=setA&seed=3")
    moved = client.get("/api/image?set=setA&seed=3&shifts=0:4,2:-3&scale=1")
    assert _png(moved).size == (32, 32)
    assert base.data != moved.data
    renderer = app.extensions["latentdirs"].renderer
    hits = renderer.hits
    again = client.get("/api/image?set=setA&seed=3&shifts=2:-3,0:4&scale=1")  # same edit, other order
    assert again.data == moved.data and renderer.hits == hits + 1
    assert client.get("/api/image?set=setA&seed=4").data != base.data  # another latent


def test_image_download_and_scale(client):
    response = client.get("/api/image?set=setB&seed=1&shifts=1:2&scale=4&download=1")
    assert _png(response).size == (128, 128)
    assert "attachment" in response.headers["Content-Disposition"]
    assert "setB_seed1_d1+2.png" in response.headers["Content-Disposition"]


def test_chart_rows_are_latents_columns_are_shifts(client):
    one = _png(client.get("/api/chart?set=setA&direction=1&seeds=0-1&shifts=-4,0,4&scale=1"))
    two = _png(client.get("/api/chart?set=setA&direction=1&seeds=0-3&shifts=-4,0,4&scale=1"))
    wide = _png(client.get("/api/chart?set=setA&direction=1&seeds=0-1&shifts=-8:8:9&scale=1"))
    assert two.height > one.height and one.width == two.width
    assert wide.width > one.width and wide.height == one.height


def test_pages_are_served_without_external_resources(client):
    for page in ("/", "/rate", "/results"):
        response = client.get(page)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "http://" not in html and "https://" not in html
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert client.get("/static/explorer.js").status_code == 200


@pytest.mark.parametrize("url, status, message", [
    ("/api/image?set=nope&seed=0", 404, "unknown direction set"),
    ("/api/image?seed=0", 400, "give a direction set"),
    ("/api/image?set=../setA&seed=0", 404, "unknown direction set"),
    ("/api/image?set=%2e%2e%2fsetA%2fdirections&seed=0", 404, "unknown direction set"),
    ("/api/image?set=setA&shifts=3:1", 400, "between 0 and 2"),
    ("/api/image?set=setA&shifts=-1:1", 400, "between 0 and 2"),
    ("/api/image?set=setA&shifts=0:abc", 400, "must be a number"),
    ("/api/image?set=setA&shifts=0:nan", 400, "between -30 and 30"),
    ("/api/image?set=setA&shifts=0:1e6", 400, "between -30 and 30"),
    ("/api/image?set=setA&shifts=0:1,0:2", 400, "given twice"),
    ("/api/image?set=setA&shifts=0", 400, "direction:shift"),
    ("/api/image?set=setA&seed=-1", 400, "seed must be between"),
    ("/api/image?set=setA&seed=x", 400, "seed must be an integer"),
    ("/api/image?set=setA&scale=100", 400, "scale must be between"),
    ("/api/chart?set=setA&direction=7", 400, "direction must be between"),
    ("/api/chart?set=setA", 400, "direction must be an integer"),
    ("/api/chart?set=setA&direction=0&seeds=0-100000", 400, "at most 16 latents"),
    ("/api/chart?set=setA&direction=0&seeds=" + ",".join(["1"] * 40), 400, "1 to 16 latents"),
    ("/api/chart?set=setA&direction=0&shifts=-8:8:5000", 400, "number of shifts"),
    ("/api/chart?set=setA&direction=0&shifts=-800:8:5", 400, "between -30 and 30"),
    ("/api/rating/state", 400, "enter an assessor name"),
    ("/api/rating/item?assessor=ann&position=99", 400, "position must be between"),
    ("/api/rating/chart?assessor=ann&position=-1", 400, "position must be between"),
    ("/api/no/such/endpoint", 404, "Not Found"),
])
def test_bad_requests_get_a_clear_json_error(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_nothing_outside_the_package_static_folder_is_served(client, runs):
    for url in ("/static/../../directions.py", "/static/%2e%2e/app.py", "/api/../setA/directions/directions.json",
                f"/static/{runs[0]}/directions/directions.json"):
        response = client.get(url, follow_redirects=True)
        assert response.status_code == 404, url
        assert b"latentdirs.directions" not in response.data


@pytest.mark.parametrize("body, message", [
    ({"assessor": "ann", "position": 0, "consistent": "yes", "single_factor": True}, "consistent must be true or false"),
    ({"assessor": "ann", "position": 0, "consistent": True}, "single_factor must be true or false"),
    ({"assessor": "ann", "position": 0, "consistent": True, "single_factor": True, "category": "smell"}, "category"),
    ({"assessor": "", "position": 0, "consistent": True, "single_factor": True}, "assessor name"),
    ({"assessor": "ann", "position": 6, "consistent": True, "single_factor": True}, "position must be between"),
    ({"assessor": "ann", "position": 0, "consistent": True, "single_factor": True, "name": "x" * 500}, "at most 80"),
    ([1, 2], "JSON object"),
])
def test_bad_answers_are_refused(client, body, message):
    response = client.post("/api/rating/answer", json=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert client.get("/api/results").get_json()["answers"] == 0


def test_posts_must_be_json_and_hosts_loopback(runs, tmp_path, monkeypatch):
    from latentdirs.web.app import LOOPBACK_HOSTS
    app = create_app([str(runs[0])], db_path=tmp_path / "r.sqlite", allowed_hosts=LOOPBACK_HOSTS)
    client = app.test_client()
    form = client.post("/api/rating/answer", data={"assessor": "ann", "position": "0"})
    assert form.status_code == 415 and "JSON" in form.get_json()["error"]
    assert client.post("/api/apply-names", data="x").status_code == 415
    rebound = client.get("/api/sets", headers={"Host": "attacker.example:8765"})
    assert rebound.status_code == 403 and "answers only to" in rebound.get_json()["error"]
    assert client.get("/api/sets", headers={"Host": "127.0.0.1:8765"}).status_code == 200

    def broken(*args, **kwargs):
        raise RuntimeError("generator exploded")
    monkeypatch.setattr(app.extensions["latentdirs"].renderer, "image", broken)
    response = client.get("/api/image?set=setA")
    assert response.status_code == 500 and "generator exploded" in response.get_json()["error"]


def test_sets_of_different_generators_are_refused(runs, tmp_path):
    other = _save_set(tmp_path / "other", load_generator("planted", latent_dim=20), 3, 0)
    with pytest.raises(ValueError, match="different generators"):
        load_sets([runs[0], other])
    assert main(["serve", str(runs[0]), str(other), "--port", "0"]) == 2


def test_w_plus_sets_of_different_layer_ranges_are_refused(tmp_path):
    from latentdirs.directions import DirectionSet
    folders = []
    for layers in ([0, 2], [2, 4]):
        meta = {"generator": {"name": "stylegan2", "latent_space": "w+", "latent_dim": 8, "layers": layers}}
        directions = DirectionSet.random(8, 3, seed=0)
        directions.meta.update(meta)
        folders.append(directions.save(tmp_path / f"layers{layers[0]}"))
    with pytest.raises(ValueError, match=r"space w\+ layers 0-2\n.*space w\+ layers 2-4"):
        load_sets(folders)
    assert len(load_sets(folders[:1] * 2)) == 2  # the same range twice is one space


# -- rating ----------------------------------------------------------------------------
def _answer(client, assessor, position, consistent=True, single_factor=True, category=None, name=""):
    response = client.post("/api/rating/answer", json={
        "assessor": assessor, "position": position, "consistent": consistent, "single_factor": single_factor,
        "category": category, "name": name})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_rating_is_blind_shuffled_and_deterministic(client, app):
    state = client.get("/api/rating/state?assessor=ann").get_json()
    assert state["total"] == 6 and state["answered"] == 0 and state["next"] == 0
    assert state["seeds"] == list(range(10)) and state["shifts"][0] == -8 and state["shifts"][-1] == 8
    item = client.get("/api/rating/item?assessor=ann&position=0")
    assert b"setA" not in item.data and b"setB" not in item.data  # set names stay hidden
    chart = _png(client.get(item.get_json()["chart"]))
    assert chart.height > 10 * 32  # ten latents, one row each
    items = app.extensions["latentdirs"].rating_items()
    ann = ratings.rating_order(items, "ann")
    assert ann == ratings.rating_order(list(reversed(items)), " ann ")  # stable, whatever the set order
    assert sorted(ann) == sorted(items)
    others = {tuple(ratings.rating_order(items, f"assessor {i}")) for i in range(8)}
    assert len(others) > 1  # each assessor gets an own order, directions of both sets mixed


def test_rating_session_resumes_after_restart(runs, tmp_path):
    db = tmp_path / "answers.sqlite"
    client = create_app([str(r) for r in runs], db_path=db).test_client()
    _answer(client, "ann", 0, category="geometry", name="size")
    state = _answer(client, "ann", 1, consistent=False)
    assert state["answered"] == 2 and state["next"] == 2
    # a new process on the same database: nothing lost, the session goes on where it stopped
    client = create_app([str(r) for r in reversed(runs)], db_path=db).test_client()
    state = client.get("/api/rating/state?assessor=ann").get_json()
    assert state["answered"] == 2 and state["next"] == 2 and state["positions"][:2] == [True, True]
    first = client.get("/api/rating/item?assessor=ann&position=0").get_json()["answer"]
    assert first == {"consistent": True, "single_factor": True, "category": "geometry", "name": "size"}
    for position in range(2, 6):
        state = _answer(client, "ann", position)
    assert state["answered"] == 6 and state["next"] is None
    state = _answer(client, "ann", 1, consistent=True)  # changing an answer replaces it
    assert len(ratings.RatingStore(db).answers("ann")) == 6


def test_answers_default_to_the_first_run_folder(runs, tmp_path):
    import shutil
    folder = shutil.copytree(runs[0], tmp_path / "copy")
    create_app([str(folder)]).test_client().post(
        "/api/rating/answer", json={"assessor": "bo", "position": 0, "consistent": True, "single_factor": False})
    assert len(ratings.RatingStore(folder / ratings.DB_NAME).answers()) == 1


# -- MOS -------------------------------------------------------------------------------
KNOWN = [  # assessor, set, direction, q1, q2, category, name
    ("ann", "A", 0, True, True, "geometry", "Size"),
    ("ann", "A", 1, True, False, "colour", ""),
    ("ann", "B", 0, False, False, None, ""),
    ("ann", "B", 1, True, True, "colour", "hue"),
    ("bob", "A", 0, True, True, "geometry", "size"),
    ("bob", "A", 1, True, True, None, "background"),
    ("bob", "B", 0, True, True, "texture", "grain"),
    ("bob", "B", 1, False, True, "colour", "Hue"),
    ("cy", "A", 0, True, True, "other", "zoom"),
]


def _known_store(path):
    store = ratings.RatingStore(path)
    for assessor, set_name, k, q1, q2, category, name in KNOWN:
        store.record(assessor, set_name, k, q1, q2, category, name)
    return store


def test_mos_on_known_answers(tmp_path):
    answers = _known_store(tmp_path / "r.sqlite").answers()
    table = ratings.mos_by_set(answers)
    assert table["A"]["mos"] == pytest.approx(4 / 5) and table["A"]["answers"] == 5
    assert table["A"]["assessors"] == 3 and table["A"]["directions"] == 2
    assert table["B"]["mos"] == pytest.approx(2 / 4)
    assert table["B"]["consistent"] == pytest.approx(2 / 4) and table["B"]["single_factor"] == pytest.approx(3 / 4)
    per = ratings.mos_by_assessor(answers)
    assert per["ann"] == {"A": 0.5, "B": 0.5} and per["bob"] == {"A": 1.0, "B": 0.5} and per["cy"] == {"A": 1.0}
    rates = ratings.category_rates(answers)
    assert rates["A"] == pytest.approx({"geometry": 2 / 5, "texture": 0, "colour": 0, "other": 1 / 5,
                                        "uncategorised": 1 / 5})
    assert rates["B"] == pytest.approx({"geometry": 0, "texture": 1 / 4, "colour": 1 / 4, "other": 0,
                                        "uncategorised": 0})
    assert sum(rates["A"].values()) == pytest.approx(table["A"]["mos"])
    assert ratings.consensus_names(answers) == {"A": {0: "Size", 1: "background"}, "B": {0: "grain", 1: "Hue"}}
    assert ratings.consensus_names(answers, min_votes=2) == {"A": {0: "Size"}, "B": {1: "Hue"}}
    report = ratings.format_report(answers)
    assert "0.800" in report and "0.500" in report


def test_results_endpoint_and_csv(client, app):
    order = ratings.rating_order(app.extensions["latentdirs"].rating_items(), "ann")
    for position, (set_name, k) in enumerate(order):
        _answer(client, "ann", position, consistent=set_name == "setA", category="geometry", name=f"{set_name}{k}")
    results = client.get("/api/results").get_json()
    mos = {row["set"]: row["mos"] for row in results["sets"]}
    assert mos == {"setA": 1.0, "setB": 0.0}
    assert results["per_assessor"] == {"ann": {"setA": 1.0, "setB": 0.0}}
    rows = list(csv.DictReader(io.StringIO(client.get("/api/results.csv").get_data(as_text=True))))
    assert [(r["set"], float(r["mos"]), float(r["geometry"])) for r in rows] == [("setA", 1.0, 1.0), ("setB", 0.0, 0.0)]
    answers = list(csv.DictReader(io.StringIO(client.get("/api/answers.csv").get_data(as_text=True))))
    assert len(answers) == 6 and set(answers[0]) >= {"assessor", "set_name", "direction", "consistent", "name"}


def test_apply_names_from_the_app(client, app, runs):
    _answer(client, "ann", 0, name="tilt")
    written = client.post("/api/apply-names", json={}).get_json()["written"]
    (set_name, names), = written.items()
    (k, name), = names.items()
    assert name == "tilt"
    reloaded = DirectionSet.load(app.extensions["latentdirs"].sets[set_name].directory)
    assert reloaded.names[int(k)] == "tilt"
    served = {s["name"]: s for s in client.get("/api/sets").get_json()["sets"]}
    assert served[set_name]["names"][int(k)] == "tilt"  # the running app shows the new name too
    reloaded.names[int(k)] = ""  # the module's run folders are shared by other tests
    reloaded.save(app.extensions["latentdirs"].sets[set_name].directory)


def test_mos_command(tmp_path, capsys):
    gen = load_generator("planted")
    a, b = _save_set(tmp_path / "A", gen, 2, 0), _save_set(tmp_path / "B", gen, 2, 1)
    _known_store(a / ratings.DB_NAME)
    out_csv = tmp_path / "mos.csv"
    assert main(["mos", str(a), str(b), "--csv", str(out_csv), "--answers-csv", str(tmp_path / "all.csv"),
                 "--apply-names"]) == 0
    printed = capsys.readouterr().out
    assert "MOS per set" in printed and "named 2 directions of A" in printed
    rows = {r["set"]: r for r in csv.DictReader(out_csv.open())}
    assert float(rows["A"]["mos"]) == pytest.approx(0.8) and float(rows["B"]["mos"]) == pytest.approx(0.5)
    assert DirectionSet.load(a).names == ["Size", "background"]
    assert DirectionSet.load(b).names == ["grain", "Hue"]
    assert json.loads((a / "directions" / "directions.json").read_text())["names"] == ["Size", "background"]
    assert main(["mos", str(tmp_path / "B")]) == 2  # no database there
    assert "no answers database" in capsys.readouterr().err


def test_mos_leaves_out_answers_for_directions_a_set_no_longer_has(tmp_path, capsys):
    gen = load_generator("planted")
    a = _save_set(tmp_path / "A", gen, 2, 0)
    store = _known_store(a / ratings.DB_NAME)
    store.record("ann", "A", 5, True, True, "other", "")  # rated before the set was saved again with 2 directions
    assert main(["mos", str(a)]) == 0
    printed = capsys.readouterr().out
    assert "left out 1 answers for directions the sets no longer have: A #5" in printed
    assert main(["mos", str(a), "--csv", str(tmp_path / "mos.csv")]) == 0
    row, = [r for r in csv.DictReader((tmp_path / "mos.csv").open()) if r["set"] == "A"]
    assert float(row["mos"]) == pytest.approx(0.8)  # the known answers alone, as in test_mos_command


def test_serve_command_starts_on_loopback(runs, tmp_path, monkeypatch, capsys):
    from werkzeug import serving
    seen = {}

    def stop_at_once(self):
        seen["address"] = self.server_address
        raise KeyboardInterrupt  # what Ctrl-C does
    monkeypatch.setattr(serving.BaseWSGIServer, "serve_forever", stop_at_once)
    assert main(["serve", str(runs[0]), str(runs[1]), "--port", "0", "--db", str(tmp_path / "r.sqlite")]) == 0
    out = capsys.readouterr().out
    assert seen["address"][0] == "127.0.0.1"
    assert f"open http://127.0.0.1:{seen['address'][1]}/" in out and "setA, setB" in out


def test_serve_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    assert "latentdirs serve runs/" in text and "127.0.0.1" in text


@pytest.mark.parametrize("field, value", [("name", "\ud800"), ("name", "tilt\x00"), ("assessor", "ann\x1b[2J"),
                                          ("assessor", "\udfff")])
def test_unpaired_surrogates_and_control_characters_in_answers_are_a_400(client, field, value):
    # a lone surrogate was a 500 (UTF-8 cannot store it); a control character reached `mos`'s terminal and the set
    body = {"assessor": "ann", "position": 0, "consistent": True, "single_factor": True, field: value}
    response = client.post("/api/rating/answer", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert "control or unpaired surrogate character" in response.get_json()["error"]
    assert client.get("/api/results").get_json()["answers"] == 0
    with pytest.raises(ratings.RatingError, match="unpaired surrogate"):
        ratings.clean_assessor("\ud800")


@pytest.mark.parametrize("args, message", [(["--port", "-1"], "port from 0 to 65535"),
                                           (["--port", "70000"], "port from 0 to 65535"),
                                           (["--cache-size", "-5"], "integer >= 0")])
def test_serve_refuses_a_port_out_of_range_and_a_negative_cache(runs, tmp_path, args, message, capsys):
    # --port -1 was socket's OverflowError traceback, 70000 was bound as 70000 - 65536; a negative cache 500ed
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(runs[0]), "--db", str(tmp_path / "r.sqlite"), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(ValueError, match="cache_size must be an integer >= 0"):
        create_app([str(runs[0])], db_path=tmp_path / "r.sqlite", cache_size=-1)


def test_mos_refuses_a_csv_path_that_is_a_folder_before_the_report(tmp_path, capsys):
    gen = load_generator("planted")
    a = _save_set(tmp_path / "A", gen, 2, 0)
    _known_store(a / ratings.DB_NAME)
    for option in ("--csv", "--answers-csv"):
        assert main(["mos", str(a), option, str(tmp_path)]) == 2
        captured = capsys.readouterr()
        assert f"{option} {tmp_path} is a folder" in captured.err and "MOS per set" not in captured.out
