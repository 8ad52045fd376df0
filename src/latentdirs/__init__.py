"""latentdirs: unsupervised discovery of interpretable directions in GAN latent spaces.

    import latentdirs
    G = latentdirs.load_generator("planted")            # or latentdirs.wrap(my_module, latent_dim=128)
    found = latentdirs.discover(G, num_directions=10, steps=2_000)
    latentdirs.rca(G, found.directions, steps=1_000)
"""
__version__ = "0.1.0"

from .directions import DirectionError, DirectionSet
from .discovery import PRESETS, DiscoveryConfig, DiscoveryResult, discover
from .evaluation.rca import rca
from .generators import Generator, GeneratorError, available_generators, load_generator, wrap


def __getattr__(name):
    # Heavier parts load on first use, so `import latentdirs` stays fast.
    import importlib
    lazy = {"sefa": ("closed_form", "sefa"), "ganspace": ("closed_form", "ganspace"),
            "latentclr": ("contrastive", "latentclr"),
            "metrics": ("metrics", None), "render": ("render", None),
            "invert": ("inversion", "invert"), "name_directions": ("evaluation.naming", "name_directions")}
    if name in lazy:
        module_name, attr = lazy[name]
        module = importlib.import_module(f".{module_name}", __name__)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'latentdirs' has no attribute {name!r}")


__all__ = ["PRESETS", "DirectionError", "DirectionSet", "DiscoveryConfig", "DiscoveryResult", "Generator", "GeneratorError",
           "available_generators", "discover", "ganspace", "invert", "latentclr", "load_generator", "metrics",
           "name_directions", "rca",
           "sefa", "wrap"]
