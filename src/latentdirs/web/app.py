"""``latentdirs serve``: a local web app over saved direction sets of one generator.

Pages: the explorer (``/``: charts and live sliders), the blind rating session (``/rate``)
and the results (``/results``). Everything the pages show comes from the JSON and PNG
endpoints under ``/api/``; a bad request gets a 4xx with ``{"error": "..."}``. Nothing but
the package's own static files is ever served from disk.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import BadRequest, HTTPException

from . import ratings
from .images import (DEFAULT_SHIFTS, MAX_CHART_LATENTS, MAX_CHART_SHIFTS, MAX_SCALE, MAX_SEED, MAX_SHIFT, Renderer,
                     RequestError, ServedSet, load_sets, parse_amounts, parse_int, parse_seeds, parse_shift_list)
from .uploads import MAX_UPLOAD_BODY, add_upload_api

RATING_SHIFTS = list(DEFAULT_SHIFTS)  # the paper's charts: s from -8 to 8
MAX_BODY = 64 * 1024                  # a JSON post; an upload may carry a photo of a few MB
BODY_LIMITS = {"/api/upload": MAX_UPLOAD_BODY}
MAX_JSON_DEPTH = 20                   # the answers are flat objects; deeper nesting is refused unparsed


@dataclass
class AppState:
    sets: dict[str, ServedSet]
    renderer: Renderer
    store: ratings.RatingStore
    rating_seeds: list[int]
    generator_info: dict = field(default_factory=dict)

    def served(self, name: str | None) -> ServedSet:
        if not name:
            raise RequestError("give a direction set: set=NAME (see /api/sets)")
        if name not in self.sets:
            raise RequestError(f"unknown direction set {name!r}; served sets: {', '.join(self.sets)}", 404)
        return self.sets[name]

    def rating_items(self) -> list[tuple[str, int]]:
        return [(name, k) for name, s in self.sets.items() for k in range(s.directions.num_directions)]


def create_app(run_dirs, generator=None, db_path: str | Path | None = None, cache_size: int = 512,
               rating_latents: int = 10, device: str = "cpu", allowed_hosts: set[str] | None = None,
               encoder=None, invert_steps: int = 200, per_layer: bool | None = None) -> Flask:
    """The Flask app over ``run_dirs`` (run folders or direction-set folders of one generator).

    ``generator`` defaults to the one the first set records (its loading spec); answers go
    to ``db_path``, by default ``ratings.sqlite`` in the first folder. ``allowed_hosts``
    (host names without port) refuses requests addressed to any other name, so a web page
    elsewhere cannot reach a loopback server through DNS rebinding. ``encoder``, ``invert_steps``
    and ``per_layer`` set how uploaded images are inverted (see :func:`latentdirs.invert`; ``None``:
    one w per layer wherever the generator has them).
    """
    sets = load_sets(run_dirs)
    first = next(iter(sets.values()))
    if generator is None:
        from ..generators import generator_from_spec
        described = first.directions.meta.get("generator") or {}
        generator = generator_from_spec(described.get("spec"), described)
    generator = generator.to(device)
    first.directions.check_fits(generator, first.directory)
    store = ratings.RatingStore(db_path or Path(run_dirs[0]) / ratings.DB_NAME)
    # The rated latents are fixed once per database, so later assessors see the same ones.
    stored = store.setting("rating_seeds")
    if stored is None:
        seeds = list(range(parse_int(rating_latents, "rating latents", 1, MAX_CHART_LATENTS)))
        store.set_setting("rating_seeds", json.dumps(seeds))
    else:
        seeds = json.loads(stored)
    state = AppState(sets, Renderer(generator, cache_size), store, seeds,
                     {"name": generator.name, "latent_dim": generator.latent_dim,
                      "image_shape": list(generator.image_shape)})

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False
    app.extensions["latentdirs"] = state
    _add_error_handlers(app)
    _add_request_checks(app, allowed_hosts)
    _add_pages(app)
    _add_image_api(app, state)
    _add_rating_api(app, state)
    app.extensions["latentdirs_uploads"] = add_upload_api(app, state, encoder, invert_steps, per_layer)  # uploaded images: web/uploads.py
    return app


def _error(message: str, status: int) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _add_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def request_error(exc):
        return _error(str(exc), exc.status)

    @app.errorhandler(ratings.RatingError)
    def rating_error(exc):
        return _error(str(exc), 400)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if request.path.startswith("/api/"):
            return _error(f"{exc.name}: {exc.description}", exc.code or 400)
        return exc

    @app.errorhandler(Exception)
    def unexpected(exc):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        app.logger.exception("error while answering %s", request.path)
        return _error(f"internal error: {type(exc).__name__}: {exc}", 500)

    @app.after_request
    def headers(response):
        # Everything is served from here: no CDN, no inline script, nothing to sniff.
        response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' blob: data:"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


def _add_request_checks(app: Flask, allowed_hosts: set[str] | None) -> None:
    @app.before_request
    def checks():
        if allowed_hosts is not None and request.host.rsplit(":", 1)[0].lower() not in allowed_hosts:
            raise RequestError(f"this server answers only to {', '.join(sorted(allowed_hosts))}", 403)
        # Only JSON posts: a form on another site cannot send one without the browser asking first.
        if request.method == "POST" and not request.is_json:
            raise RequestError("send JSON (Content-Type: application/json)", 415)
        if request.method == "POST":
            request.max_content_length = BODY_LIMITS.get(request.path, MAX_BODY)
            data = request.get_data(cache=True)
            check_json_depth(data)
            if data.strip():
                try:  # parsed once here; the views read the cached result
                    request.get_json(cache=True)
                except BadRequest:
                    raise RequestError("the body is not valid JSON (UTF-8)") from None


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # a JSON string, escapes included (unrolled: fast)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def check_json_depth(data: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit`` before parsing it: Python's parser recurses once per
    level and a 60 KB body of brackets would otherwise end in a RecursionError (an HTTP 500)."""
    if data.count(b"[") + data.count(b"{") <= limit:  # an upload: a few MB of base64, one bracket
        return
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', data)):
        depth += 1 if match.group() in b"[{" else -1
        if depth > limit:
            raise RequestError(f"the JSON body is nested more than {limit} levels deep", 400)


def _add_pages(app: Flask) -> None:
    @app.get("/")
    def explorer():
        return render_template("explorer.html", page="explorer")

    @app.get("/rate")
    def rate():
        return render_template("rate.html", page="rate", categories=ratings.CATEGORIES)

    @app.get("/results")
    def results():
        return render_template("results.html", page="results")


def _png(data: bytes, filename: str | None = None) -> Response:
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=3600"
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _scale(state: AppState) -> int:
    text = request.args.get("scale")
    return state.renderer.default_scale() if text in (None, "") else parse_int(text, "scale", 1, MAX_SCALE)


def _add_image_api(app: Flask, state: AppState) -> None:
    @app.get("/api/sets")
    def sets():
        return jsonify(generator=state.generator_info, sets=[s.describe() for s in state.sets.values()],
                       limits={"max_shift": MAX_SHIFT, "max_seed": MAX_SEED, "max_chart_latents": MAX_CHART_LATENTS,
                               "max_chart_shifts": MAX_CHART_SHIFTS, "max_scale": MAX_SCALE},
                       default_scale=state.renderer.default_scale())

    @app.get("/api/image")
    def image():
        """G(z_seed + sum_k s_k h_k): ?set=NAME&seed=3&shifts=0:2.5,4:-1[&scale=4][&download=1]"""
        served = state.served(request.args.get("set"))
        seed = parse_int(request.args.get("seed", "0"), "seed", 0, MAX_SEED)
        amounts = parse_amounts(request.args.get("shifts"), served.directions.num_directions)
        data = state.renderer.image(served, seed, amounts, _scale(state))
        filename = None
        if request.args.get("download"):
            edits = "_".join(f"d{k}{s:+g}" for k, s in sorted(amounts.items())) or "original"
            filename = f"{served.name}_seed{seed}_{edits}.png"
        return _png(data, filename)

    @app.get("/api/chart")
    def chart():
        """Rows = latents, columns = shifts: ?set=NAME&direction=2[&seeds=0-4][&shifts=-8:8:9]"""
        served = state.served(request.args.get("set"))
        k = parse_int(request.args.get("direction"), "direction", 0, served.directions.num_directions - 1)
        seeds = parse_seeds(request.args.get("seeds"), list(range(5)))
        shifts = parse_shift_list(request.args.get("shifts"))
        return _png(state.renderer.chart(served, k, seeds, shifts, _scale(state)))


def _assessor() -> str:
    if request.method == "POST":
        body = request.get_json(silent=True)
        return ratings.clean_assessor(body.get("assessor") if isinstance(body, dict) else None)
    return ratings.clean_assessor(request.args.get("assessor"))


def _add_rating_api(app: Flask, state: AppState) -> None:
    def plan(assessor: str) -> tuple[list[tuple[str, int]], dict]:
        order = ratings.rating_order(state.rating_items(), assessor)
        done = {(a["set_name"], a["direction"]): a for a in state.store.answers(assessor)}
        return order, done

    def position_arg(value, order) -> int:
        return parse_int(value, "position", 0, len(order) - 1)

    @app.get("/api/rating/state")
    def rating_state():
        """Where an assessor stands: how many directions, which are answered, the next one."""
        assessor = _assessor()
        order, done = plan(assessor)
        answered = [item in done for item in order]
        next_position = answered.index(False) if False in answered else None
        return jsonify(assessor=assessor, total=len(order), answered=sum(answered), next=next_position,
                       positions=answered, seeds=state.rating_seeds, shifts=RATING_SHIFTS)

    @app.get("/api/rating/item")
    def rating_item():
        """One direction of the session, blind: its position, its chart URL, an earlier answer."""
        assessor = _assessor()
        order, done = plan(assessor)
        position = position_arg(request.args.get("position"), order)
        previous = done.get(order[position])
        answer = None if previous is None else {k: previous[k] for k in
                                                ("consistent", "single_factor", "category", "name")}
        return jsonify(position=position, total=len(order), answer=answer,
                       chart=f"/api/rating/chart?assessor={_quote(assessor)}&position={position}")

    @app.get("/api/rating/chart")
    def rating_chart():
        assessor = _assessor()
        order, _ = plan(assessor)
        set_name, k = order[position_arg(request.args.get("position"), order)]
        return _png(state.renderer.chart(state.sets[set_name], k, state.rating_seeds, RATING_SHIFTS,
                                         state.renderer.default_scale()))

    @app.post("/api/rating/answer")
    def rating_answer():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise RequestError("send the answer as a JSON object")
        assessor = _assessor()
        order, _ = plan(assessor)
        if not isinstance(body.get("position"), int) or isinstance(body.get("position"), bool):
            raise RequestError(f"position must be an integer, got {body.get('position')!r}"[:200])
        position = position_arg(body.get("position"), order)
        values = {}
        for key in ("consistent", "single_factor"):
            if not isinstance(body.get(key), bool):
                raise RequestError(f"{key} must be true or false")
            values[key] = body[key]
        set_name, k = order[position]
        state.store.record(assessor, set_name, k, values["consistent"], values["single_factor"],
                           body.get("category"), body.get("name"), position)
        return rating_state()

    @app.get("/api/results")
    def api_results():
        answers = state.store.answers()
        return jsonify(sets=ratings.summary_rows(answers), per_assessor=ratings.mos_by_assessor(answers),
                       categories=list(ratings.CATEGORIES) + ["uncategorised"],
                       names={s: {str(k): v for k, v in names.items()}
                              for s, names in ratings.consensus_names(answers).items()},
                       current_names={name: s.directions.names for name, s in state.sets.items()},
                       answers=len(answers), database=state.store.path.name)

    @app.get("/api/results.csv")
    def results_csv():
        return Response(ratings.to_csv(ratings.summary_rows(state.store.answers())), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="mos.csv"'})

    @app.get("/api/answers.csv")
    def answers_csv():
        return Response(ratings.answers_csv(state.store.answers()), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="answers.csv"'})

    @app.post("/api/apply-names")
    def apply_names():
        written = ratings.apply_names(state.store.answers(), state.sets)
        return jsonify(written={s: {str(k): v for k, v in names.items()} for s, names in written.items()})


def _quote(text: str) -> str:
    from urllib.parse import quote
    return quote(text, safe="")
