"""``latentdirs generators``: the generator kinds."""


def add_parser(sub) -> None:
    p = sub.add_parser("generators", help="list the generator kinds")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..generators import available_generators
    print("\n".join(f"{kind:14s} {about}" for kind, about in available_generators().items()))
    return 0
