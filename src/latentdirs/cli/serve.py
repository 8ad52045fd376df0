"""``latentdirs serve``: the web explorer and the MOS rating protocol (needs the ``web`` extra)."""
from __future__ import annotations

import argparse
import sys

from .options import (Formatter, add_generator_options, add_rating_options, add_runtime_options, nonnegative_int,
                      positive_int, set_threads)


def port_number(text: str) -> int:
    """A port from 0 to 65535 (the socket would bind a larger one modulo 65536)."""
    try:
        port = int(text)
    except ValueError:
        port = None
    if port is None or not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535 (0: a free one), got {text!r}")
    return port


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="web explorer with sliders and the MOS rating protocol",
                       description="Serve saved direction sets of one generator: an explorer (charts, sliders, "
                                   "download) and a blind rating session whose answers go to SQLite "
                                   "(read them with `latentdirs mos`). Needs Flask: pip install -e \".[web]\".\n\n"
                                   "examples:\n"
                                   "  latentdirs serve runs/00003-discover-shapes3d-k32-unit\n"
                                   "  latentdirs serve runs/00003-*/ runs/00004-*/ --port 8080 --db ratings.sqlite\n"
                                   "  latentdirs serve my_dirs/ --generator stylegan2 --checkpoint g.pt --space w",
                       formatter_class=Formatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind; anything but loopback exposes the app to your network")
    p.add_argument("--port", type=port_number, default=8765, help="port (0 picks a free one)")
    add_rating_options(p, help="run folders or direction-set folders (one generator)")  # here: --help keeps --db after --port
    p.add_argument("--cache-size", type=nonnegative_int, default=512,
                   help="rendered images kept in memory (0: no cache)")
    p.add_argument("--rating-latents", type=positive_int, default=10,
                   help="latents (seeds 0..N-1) every assessor rates on; fixed when the database is created")
    p.add_argument("--log-requests", action="store_true", help="print a line per request (a slider drag sends many)")
    p.add_argument("--encoder", default=None, metavar="DIR", help="encoder folder for inverting uploaded images "
                   "(default: none, the best of 256 prior samples starts the optimization)")
    p.add_argument("--invert-steps", type=positive_int, default=200, help="optimization steps per uploaded image")
    p.add_argument("--per-layer", action=argparse.BooleanOptionalAction, default=None,
                   help="invert uploads with one w per synthesis layer (W+: closer reconstructions, the same "
                        "sliders). Default: on for style-based generators in w or w+, off elsewhere")
    add_runtime_options(p)
    add_generator_options(p, default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from ..devices import resolve_device
    from ..web.app import LOOPBACK_HOSTS, create_app
    set_threads(args.threads)
    generator = None
    if args.generator:  # override what the sets record (e.g. a checkpoint that moved)
        from .options import generator_from_args
        generator = generator_from_args(args)
    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    from ..inversion import Encoder
    encoder = Encoder.from_pretrained(args.encoder) if args.encoder else None
    app = create_app(args.sets, generator, args.db, args.cache_size, args.rating_latents,
                     str(resolve_device(args.device)), allowed_hosts=LOOPBACK_HOSTS if loopback else None,
                     encoder=encoder, invert_steps=args.invert_steps, per_layer=args.per_layer)
    state = app.extensions["latentdirs"]
    if not loopback:
        print(f"warning: binding {args.host}: anyone who can reach this machine can use the app", file=sys.stderr)
    if not args.log_requests:
        import logging
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.host, args.port, app, threaded=True)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving {len(state.sets)} direction set(s) of {state.generator_info['name']} "
          f"({', '.join(state.sets)}); answers in {state.store.path}", flush=True)
    print(f"open http://{host}:{server.server_port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
