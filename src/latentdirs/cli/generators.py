"""``latentdirs generators``: the generator kinds."""


def add_parser(sub) -> None:
    p = sub.add_parser("generators", help="list the generator kinds")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..generators import available_generators, zoo
    cached = {row["name"]: row["cached"] for row in zoo.listing()}  # zoo kinds: fetched from PyPI on first use

    def state(kind: str) -> str:
        return "" if kind not in cached else " [cached]" if cached[kind] else " [not cached: `latentdirs zoo`]"
    print("\n".join(f"{kind:14s} {about}{state(kind)}" for kind, about in available_generators().items()))
    print("\nyour own: --generator package.module:factory, or register a kind in the entry-point group "
          "latentdirs.generators (docs/generators.md, \"Your own generator on the command line\")")
    return 0
