"""``load_generator(kind, path)`` and ``available_generators()``.

Each kind maps to ``"module:function"`` so that importing latentdirs never imports every
adapter (BigGAN's code is large, and a user of SN-GAN should not pay for it).

A kind is one of three things, looked up in this order:
- a kind of this package (``_KINDS`` below);
- a kind an installed package registers in the entry-point group ``latentdirs.generators``
  (``name = "package.module:loader"``);
- ``"package.module:factory"``, any importable callable: your own generator, no registration.
Loaders and factories are called ``loader(path, **options)`` (``loader(**options)`` without a
path) and return a :class:`Generator` or a dict of :func:`wrap`'s arguments
(``dict(module=net, latent_dim=128)``). The kind string is what a set's metadata records, so every
command reloads the same generator from it (docs/generators.md, "Your own generator on the command line").
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import sys

from .base import Generator, GeneratorError, check_generator, wrap

ENTRY_POINT_GROUP = "latentdirs.generators"

# kind -> (loader "module:function", one-line description)
_KINDS: dict[str, tuple[str, str]] = {
    "planted": ("latentdirs.generators.planted:load", "procedural renderer with known (planted) factor directions; no file"),
    "shapes3d": ("latentdirs.generators.shapes3d:load", "DCGAN with a mapping network (Z, W, W+ spaces) trained on procedural 3D-Shapes scenes (known factors); weights ship with the package"),
    "shapes3d-dcgan": ("latentdirs.generators.shapes3d:load_dcgan", "the first shipped shapes3d GAN, a plain DCGAN (Z only; blob objects); weights ship with the package"),
    "shapes3d-fade": ("latentdirs.generators.shapes3d_fade:load", "the shapes3d-dcgan trained with the background_fade factor (a background-removal direction exists); weights ship with the package"),
    # public checkpoint formats (docs/generators.md)
    "sngan-mnist": ("latentdirs.generators.sngan:load_mnist",
                    "GanLatentDiscovery SN-GAN ResNet MNIST 32x32 (folder with args.json + generator.pt)"),
    "sngan-anime": ("latentdirs.generators.sngan:load_anime",
                    "GanLatentDiscovery SN-GAN ResNet AnimeFaces 64x64 (folder with args.json + generator.pt)"),
    "proggan": ("latentdirs.generators.proggan:load",
                "ProgGAN: pytorch_GAN_zoo PGAN .pth (config/netG/avgG) or the ptrblck 1024 CelebA-HQ state dict"),
    "biggan": ("latentdirs.generators.biggan:load",
               "pytorch-pretrained-biggan BigGAN-deep (folder with config.json + pytorch_model.bin); class-conditional"),
    "stylegan2": ("latentdirs.generators.stylegan2:load",
                  "rosinality/stylegan2-pytorch .pt (g_ema); space z, w or w+ with a layer range"),
    "nvlabs-pickle": ("latentdirs.generators.nvlabs:load",
                      "NVlabs stylegan2-ada/stylegan3 .pkl; runs pickled code, needs trust_pickle=True"),
    "dcgan-tutorial": ("latentdirs.generators.dcgan_tutorial:load",
                       "PyTorch DCGAN-tutorial generator (`main` Sequential state dict, 32-256 px, optionally "
                       "class-conditional: label_dim=, classes=); architecture read from the file"),
    # the zoo: public GANs fetched from PyPI on first use (`latentdirs zoo`)
    "digiface-dcgan": ("latentdirs.generators.zoo:load_digiface",
                       "zoo: DCGAN of DigiFace-1M faces, 64 px (PyPI gan-face-generate 1.1.1, MIT); fetched on first use"),
    "omniart-eyes": ("latentdirs.generators.zoo:load_omniart_eyes",
                     "zoo: class-conditional DCGAN of painted eyes, 128 px, 8 colour classes (PyPI omniart-eye-generator "
                     "0.1, MIT); fetched on first use"),
}


def register_generator(kind: str, loader: str, description: str) -> None:
    """Add a generator kind: ``loader`` is ``"package.module:function(path=None, **options)"``."""
    _KINDS[kind] = (loader, description)


def available_generators() -> dict[str, str]:
    """Kinds that :func:`load_generator` accepts (this package's and installed packages'), one line each."""
    kinds = {kind: desc for kind, (_, desc) in _KINDS.items()}
    for name, ep in installed_generators().items():
        kinds.setdefault(name, f"{ep.value} (entry point of the installed package {_package(ep)})")
    return dict(sorted(kinds.items()))


def installed_generators() -> dict[str, importlib.metadata.EntryPoint]:
    """Kinds that installed packages register in the entry-point group ``latentdirs.generators``."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the first on sys.path wins, as for imports
    return found


def load_generator(kind: str, path: str | None = None, **options) -> Generator:
    """Load a generator of a known ``kind`` (see :func:`available_generators`) from ``path``.

    ``kind`` may also be ``"package.module:factory"``: ``factory(path, **options)`` (without
    ``path`` when it is None) returns a :class:`Generator` or a dict of :func:`wrap`'s arguments.
    """
    if not isinstance(kind, str):
        raise GeneratorError(f"a generator kind is a string such as 'shapes3d' or 'package.module:factory', "
                             f"got {kind!r}")
    loader, where = _loader(kind)
    _check_path(loader, kind, path, options, where)
    if where is None:
        gen = loader(path, **options) if path is not None else loader(**options)
    else:
        gen = _as_generator(_call(loader, where, path, options), where, default_name=kind)
    # Remember how it was loaded, so a run folder can reload the same generator later.
    gen.load_spec = {"kind": kind, "path": None if path is None else str(path), "options": options}
    return gen.freeze()


def _check_path(loader, kind: str, path, options: dict, where: str | None) -> None:
    """A checkpoint given to a loader without one, or none to a loader that needs one: named, not a TypeError."""
    try:
        params = list(inspect.signature(loader).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable: let the call say
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if where is None:  # this package's loaders name their file `path`
        first = next((p for p in params if p.name == "path"), None)
    else:
        first = positional[0] if positional else None
    what = where or f"generator kind {kind!r}"
    if path is not None and first is None:
        # planted would take the path as its latent_dim
        raise GeneratorError(f"{what} takes no checkpoint file, got the path {str(path)!r}: drop it (on the command "
                             "line, --checkpoint).")
    if (path is None and first is not None and first.kind != first.VAR_POSITIONAL and first.default is first.empty
            and first.name not in options):
        raise GeneratorError(f"{what} needs a checkpoint: pass its path (CLI: --checkpoint PATH); "
                             f"`latentdirs generators` says what file each kind reads.")


def _loader(kind: str):
    """The function that builds ``kind``, and how to name it in errors (None for this package's kinds)."""
    if kind in _KINDS:
        module_name, func_name = _KINDS[kind][0].split(":")
        return getattr(importlib.import_module(module_name), func_name), None
    installed = installed_generators()
    if kind in installed:
        ep = installed[kind]
        where = (f"generator kind {kind!r} (entry point `{ep.name} = {ep.value}` in group {ENTRY_POINT_GROUP!r} "
                 f"of the package {_package(ep)})")
        try:
            loader = ep.load()
        except Exception as exc:
            raise GeneratorError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}. Reinstall {_package(ep)}, "
                                 "or fix the entry point in its pyproject.toml "
                                 f"([project.entry-points.{ENTRY_POINT_GROUP!r}]).") from exc
        return _callable(loader, where), where
    if ":" in kind:
        return _factory(kind), f"generator factory {kind!r}"
    raise ValueError(f"unknown generator kind {kind!r}; available: {', '.join(available_generators())}. "
                     "For your own model give package.module:factory (a function returning "
                     "latentdirs.wrap(module, latent_dim=...)); docs/generators.md, \"Your own generator on the command line\".")


def _package(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "that registers it"


def _factory(ref: str):
    """The callable that ``"package.module:factory"`` names, or an error saying what is wrong and what to do."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise GeneratorError(f"generator {ref!r}: expected package.module:factory (a module you can import, "
                             "a colon, a function in it), e.g. mypkg.gens:make")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        parent = exc.name.rpartition(".")[0] if exc.name else ""
        if parent and module_name.startswith(exc.name) and parent in sys.modules:
            raise GeneratorError(f"generator factory {ref!r}: the package {parent!r} "
                                 f"({sys.modules[parent].__file__}) has no module {exc.name.rpartition('.')[2]!r}; "
                                 "check the spelling of package.module:factory.") from exc
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise GeneratorError(
                f"generator factory {ref!r}: there is no module {exc.name!r} to import. Install the package "
                f"that provides it (pip install -e path/to/it), or put the folder that holds "
                f"{module_name.split('.')[0]!r} on PYTHONPATH; `python -c \"import {module_name}\"` must work.") from exc
        raise GeneratorError(f"generator factory {ref!r}: importing {module_name!r} failed because the module "
                             f"{exc.name!r} it imports is not installed ({exc}).") from exc
    except Exception as exc:
        raise GeneratorError(f"generator factory {ref!r}: importing {module_name!r} raised "
                             f"{type(exc).__name__}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                             and getattr(v, "__module__", None) == module_name)
            raise GeneratorError(f"generator factory {ref!r}: {module_name!r} ({module.__file__}) has no {part!r}; "
                                 f"functions it defines: {', '.join(defined) or 'none'}.")
        obj = getattr(obj, part)
    return _callable(obj, f"generator factory {ref!r}")


def _callable(obj, where: str):
    if not callable(obj):
        raise GeneratorError(f"{where} is a {type(obj).__name__}, not a function: it must name a function "
                             "(path=None, **options) that returns a Generator.")
    return obj


def _call(loader, where: str, path, options: dict):
    """A user's loader called as the registry calls every loader; what it raised, named as its error."""
    try:
        return loader(path, **options) if path is not None else loader(**options)
    except (GeneratorError, TypeError):  # TypeError: options it does not take (the CLI names them)
        raise
    except Exception as exc:
        raise GeneratorError(f"{where} raised {type(exc).__name__}: {exc}"
                             + (f" (called with path={str(path)!r})" if path is not None else "")) from exc


def _as_generator(result, where: str, default_name: str) -> Generator:
    """What a user's loader returned, as a checked :class:`Generator`."""
    if isinstance(result, Generator):
        check_generator(result)
        return result
    if isinstance(result, dict):
        allowed = set(inspect.signature(wrap).parameters) - {"check"}
        missing, unknown = {"module", "latent_dim"} - set(result), set(result) - allowed
        if missing or unknown:
            raise GeneratorError(f"{where} returned a dict of wrap's arguments "
                                 + (f"without {', '.join(sorted(missing))}" if missing else "")
                                 + ("; " if missing and unknown else "")
                                 + (f"with keys wrap does not take: {', '.join(sorted(unknown))}" if unknown else "")
                                 + f"; wrap takes {', '.join(sorted(allowed))} (module and latent_dim required).")
        return wrap(**{"name": default_name, **result})
    raise GeneratorError(f"{where} returned a {type(result).__name__}; it must return a latentdirs Generator "
                         "(e.g. latentdirs.wrap(net, latent_dim=128)) or a dict of wrap's arguments "
                         "(e.g. dict(module=net, latent_dim=128)).")


# (kind, architecture) of packaged weights that a kind no longer loads -> the kind that does
_MOVED_WEIGHTS = {("shapes3d", "dcgan"): "shapes3d-dcgan"}


def generator_from_spec(spec: dict, described: dict | None = None) -> Generator:
    """Reload a generator from the ``spec`` stored in a direction set's metadata.

    ``described`` is the rest of that record (``Generator.describe()``): a set found on packaged
    weights that have since moved to another kind reloads them from there, and a generator that
    no longer matches the record (other architecture or training steps) is refused, not used.
    """
    if not spec or "kind" not in spec:
        raise ValueError("this direction set does not record how its generator was loaded; "
                         "pass the generator explicitly (--generator KIND [--checkpoint PATH])")
    described = described if isinstance(described, dict) else {}
    kind, path, options = spec["kind"], spec.get("path"), spec.get("options", {})
    # a damaged record: named here, not a TypeError from the loader call
    if not isinstance(kind, str) or not kind or not (path is None or isinstance(path, (str, os.PathLike))) \
            or not isinstance(options, dict):
        raise GeneratorError(f"this direction set's generator record is damaged: spec {spec!r} needs 'kind' "
                             "(a string), 'path' (a string or null) and 'options' (an object); pass the generator "
                             "explicitly (--generator KIND [--checkpoint PATH])")
    if path is None:
        kind = _MOVED_WEIGHTS.get((kind, described.get("architecture")), kind)
    try:
        generator = load_generator(kind, path, **options)
    except TypeError as exc:  # recorded options the loader does not take (an edited record, or a changed loader)
        raise GeneratorError(f"this direction set records the generator {kind!r} with options {options!r}, which it "
                             f"does not take ({exc}); pass the generator explicitly "
                             "(--generator KIND [--checkpoint PATH])") from exc
    now = generator.describe()
    for key in ("architecture", "training_steps", "latent_dim"):
        if key in described and key in now and described[key] != now[key]:
            raise GeneratorError(
                f"these directions were found on a {spec['kind']} generator with {key}={described[key]!r}, but "
                f"{kind}{' from ' + str(spec['path']) if spec.get('path') else ''} now loads one with "
                f"{key}={now[key]!r}; pass the generator they belong to (--generator KIND --checkpoint PATH)")
    return generator
