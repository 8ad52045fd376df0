"""``latentdirs generators``: the generator kinds."""


def add_parser(sub) -> None:
    p = sub.add_parser("generators", help="list the generator kinds")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..generators import available_generators
    print("\n".join(f"{kind:14s} {about}" for kind, about in available_generators().items()))
    print("\nyour own: --generator package.module:factory, or register a kind in the entry-point group "
          "latentdirs.generators (docs/generators.md, \"Your own generator on the command line\")")
    return 0
