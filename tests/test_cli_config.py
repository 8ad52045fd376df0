"""DiscoveryConfig (and CompareConfig, SweepConfig, RCAConfig, GANTrainConfig, UNetTrainConfig) are the one source
of options and defaults: every command's options and shown defaults must agree with them, and so must the Python
API's."""
from __future__ import annotations  # field annotations as written, which is what the parsers read

import argparse
import dataclasses
import re
from typing import ClassVar

import pytest
import torch

from latentdirs.cli import build_parser
from latentdirs.cli.options import field_docs, flag
from latentdirs.discovery import PRESETS, DiscoveryConfig, preset
from latentdirs.evaluation.compare import CompareConfig
from latentdirs.evaluation.rca import RCAConfig
from latentdirs.gan.train import GANTrainConfig
from latentdirs.saliency.train import UNetTrainConfig
from latentdirs.sweep import SweepConfig, expand


def subparser(name: str):
    """The parser of command ``name`` ("rca", or "saliency train" for a step of a command)."""
    parser = build_parser()
    for word in name.split():
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[word]
    return parser


def shown_defaults(parser) -> dict[str, str]:
    """{dest: the default the help text shows} for every option of ``parser``."""
    found = {}
    for action in parser._actions:
        match = re.search(r"\(default: (.*)\)$", (action.help or "").replace("%%", "%"))
        if match:
            found[action.dest] = match.group(1)
    return found


def shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("command, config_class, defaults, left_out", [
    ("discover", DiscoveryConfig, PRESETS["cpu"], {"device"}),
    ("demo", DiscoveryConfig, PRESETS["demo-disentangle"], None),
    ("compare", CompareConfig, CompareConfig(), {"device", "ld_options"}),  # ld_options: --ld-set KEY=VALUE
    ("sweep", SweepConfig, SweepConfig(), {"threads", "progress"}),
    ("rca", RCAConfig, RCAConfig(), set()),
    ("train-gan", GANTrainConfig, GANTrainConfig(), set()),
    ("saliency train", UNetTrainConfig, UNetTrainConfig(), set()),
])
def test_cli_options_and_defaults_are_the_configs(command, config_class, defaults, left_out):
    parser = subparser(command)
    options = {o for a in parser._actions for o in a.option_strings}
    docs = field_docs(config_class)
    fields = [f.name for f in dataclasses.fields(config_class)]
    if left_out is None:  # the demo exposes the handful of LD options that matter for it
        from latentdirs.cli.demo import OPTIONS
        fields = list(OPTIONS)
    else:
        fields = [f for f in fields if f not in left_out]
    defaults_in_help = shown_defaults(parser)
    for name in fields:
        assert flag(name) in options, f"{command} has no {flag(name)}"
        assert defaults_in_help[name] == shown(getattr(defaults, name)), f"{command} {flag(name)}"
        action = next(a for a in parser._actions if a.dest == name)
        assert action.help.replace("%%", "%").startswith(docs[name]), f"{command} {flag(name)}: help is not the doc"


def test_every_config_field_has_a_docstring():
    for cls in (DiscoveryConfig, CompareConfig, SweepConfig, RCAConfig, GANTrainConfig, UNetTrainConfig):
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in field_docs(cls)]
        assert missing == [], cls.__name__


@pytest.mark.parametrize("name", list(PRESETS))
def test_discover_resolves_each_preset_and_lays_given_options_over_it(name):
    from latentdirs.cli.discover import resolved_config
    parser = build_parser()
    assert resolved_config(parser.parse_args(["discover", "--preset", name])) == PRESETS[name]
    given = resolved_config(parser.parse_args(["discover", "--preset", name, "--steps", "7", "--no-channels-last",
                                               "--device", "cpu", "-k", "3"]))
    assert given == dataclasses.replace(PRESETS[name], steps=7, channels_last=False, device="cpu", num_directions=3)


def test_demo_compare_and_sweep_resolve_to_their_presets():
    from latentdirs.cli.demo import given_options
    parser = build_parser()
    assert given_options(parser.parse_args(["demo"])) == {"device": "auto"}  # run_demo starts from its preset
    assert given_options(parser.parse_args(["demo", "--steps", "20"]))["steps"] == 20
    # compare's LD is the disentangle preset (the short preset's budget); a sweep cell is the sweep preset
    # unless --grid/--set say otherwise
    from latentdirs.evaluation.compare import ld_steps
    recipe, short = PRESETS["disentangle"], PRESETS["short"]
    assert CompareConfig().ld_preset == "disentangle" and ld_steps(CompareConfig()) == recipe.steps
    assert (CompareConfig.batch_size, CompareConfig.lr) == (recipe.batch_size, recipe.lr)
    assert (recipe.steps, recipe.batch_size, recipe.lr) == (short.steps, short.batch_size, short.lr)
    ((_, options),) = expand({"seed": [0]})
    assert options == dataclasses.asdict(PRESETS["sweep"])


def test_the_presets_keep_the_settings_each_command_had():
    # The values each command used before the presets existed: results stay comparable.
    assert preset("cpu") == DiscoveryConfig(num_directions=32, steps=3000, lr=1e-3, batch_size=128)
    # `short` is what the first demo and compare's LD ran: the tables measured on the first shipped GAN
    assert preset("short") == DiscoveryConfig(num_directions=16, steps=1500, lr=1e-3, batch_size=64)
    # the demo's budget since the dcgan-w generator (2.6x the CPU per LD step) became the default
    assert preset("demo") == DiscoveryConfig(num_directions=16, steps=1000, lr=1e-3, batch_size=32)
    # the recipe measured in docs/compare.md, "Second round"
    assert preset("disentangle") == DiscoveryConfig(num_directions=10, steps=1500, lr=1e-3, batch_size=64,
                                                    parametrization="ortho", start="sefa", shift_weight=0.0,
                                                    overlap_weight=10.0, shifts_per_latent=2)
    # `latentdirs demo` since issue 28: the disentangle recipe in W at the demo's budget (docs/demo/report.md)
    assert preset("demo-disentangle") == dataclasses.replace(preset("disentangle"), steps=500, batch_size=32)
    assert preset("sweep") == DiscoveryConfig(num_directions=10, steps=2000, lr=1e-3, batch_size=64)
    assert preset("paper").lr == 1e-4 and preset("paper").steps == 100_000
    assert preset("demo", steps=20).steps == 20 and PRESETS["demo"].steps == 1000  # a copy, not the preset
    with pytest.raises(ValueError, match="unknown preset 'fast'; presets: paper, cpu, demo, short, sweep, disentangle, demo-disentangle"):
        preset("fast")
    with pytest.raises(TypeError, match="unknown discovery options \\['stepz'\\]"):
        preset("cpu", stepz=3)


def test_bad_choices_are_refused_by_the_config_too():
    with pytest.raises(ValueError, match="parametrization must be one of"):
        preset("cpu", parametrization="orthogonal")


@dataclasses.dataclass
class EveryType:
    count: int = 1
    rate: float = 0.5
    flag: bool = False
    maybe: bool | None = None
    limit: int | None = None
    label: str | None = None
    ids: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    mode: str = "a"
    POSITIVE: ClassVar[tuple[str, ...]] = ("count",)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"mode": ("a", "b")}


@pytest.mark.parametrize("name, text, value", [
    ("count", "3", 3), ("count", "2e3", 2000), ("rate", "0.25", 0.25), ("rate", "1e-3", 1e-3), ("flag", "false", False), ("flag", "yes", True),
    ("maybe", "false", False), ("maybe", "true", True), ("maybe", "none", None), ("limit", "none", None),
    ("limit", "0", 0), ("label", "none", None), ("label", "x", "x"), ("ids", "0,1,2", (0, 1, 2)),
    ("tags", "a, b", ("a", "b")), ("mode", "b", "b"),
])
def test_one_text_to_value_parser_for_every_field_type(name, text, value):
    from latentdirs.configs import parse_field
    parsed = parse_field(EveryType, name, text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("name, text, message", [
    ("count", "0", "count takes int values: expected a positive integer, got 0"),
    ("count", "2.5", "expected a positive integer"), ("rate", "-1", "expected a finite number >= 0"),
    ("rate", "inf", "expected a finite number >= 0"), ("rate", "nan", "expected a finite number >= 0"),
    ("flag", "maybe", "expected true or false"), ("maybe", "maybe", "expected true or false"),
    ("ids", "0,x", "expected integers like 0,1,2"), ("mode", "c", "mode must be one of a, b, got 'c'"),
])
def test_a_wrong_value_is_refused_naming_the_field(name, text, message):
    from latentdirs.configs import parse_field
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_field(EveryType, name, text)


def test_sweep_values_are_parsed_as_the_command_line_parses_them():
    from latentdirs.sweep import parse_grid
    # the old sweep parser read `bool | None` as str: 'false' came back as the (truthy) string 'false'
    assert parse_grid(["channels_last=false,true,none"]) == {"channels_last": [False, True, None]}
    parser = subparser("discover")
    samples = {"int": "3", "float": "0.5", "str": "x"}
    for f in dataclasses.fields(DiscoveryConfig):
        if f.name == "device" or str(f.type).startswith("bool"):
            continue
        text = DiscoveryConfig.CHOICES[f.name][-1] if f.name in DiscoveryConfig.CHOICES else samples[str(f.type)]
        from_cli = getattr(parser.parse_args([flag(f.name), text]), f.name)
        assert parse_grid([f"{f.name}={text}"]) == {f.name: [from_cli]}, f.name
    assert parser.parse_args(["--no-channels-last"]).channels_last is False


# -- the Python API and the command line default to the same values, for every command with a config --
def literal_defaults(func, names) -> dict:
    """The defaults ``func``'s own signature declares for ``names`` (parameter name -> default)."""
    import inspect
    params = inspect.signature(func).parameters
    return {n: params[n].default for n in names if n in params and params[n].default is not inspect.Parameter.empty}


def test_rca_api_and_command_line_share_one_config(tmp_path, monkeypatch):
    import latentdirs.evaluation.rca as rca_module
    from latentdirs import DirectionSet
    from latentdirs.cli import main
    from latentdirs.evaluation.rca import RCAConfig, rca
    # declared once: rca() takes RCAConfig's fields as keywords and declares no default of its own for them
    assert literal_defaults(rca, [f.name for f in dataclasses.fields(RCAConfig)]) == {}
    assert literal_defaults(rca, ["config"]) == {"config": None}  # None: RCAConfig()
    seen = []
    monkeypatch.setattr(rca_module, "rca", lambda generator, directions, config=None, **kw: seen.append(config) or 0.5)
    DirectionSet.random(16, 2, seed=0).save(tmp_path / "set")
    assert main(["rca", str(tmp_path / "set"), "--generator", "planted", "--no-baselines", "--threads", "1"]) == 0
    assert main(["rca", str(tmp_path / "set"), "--generator", "planted", "--no-baselines", "--steps", "7"]) == 0
    assert seen == [RCAConfig(), RCAConfig(steps=7)]


def test_discover_api_declares_no_default_of_its_own():
    from latentdirs.discovery import discover
    # discover() defaults to DiscoveryConfig(); the CLI to the cpu preset (README: "cpu (the CLI's default)"),
    # checked field by field in test_cli_options_and_defaults_are_the_configs
    assert literal_defaults(discover, [f.name for f in dataclasses.fields(DiscoveryConfig)]) == {}


def test_compare_api_defaults_are_compare_config_defaults():
    from latentdirs.evaluation.compare import compare
    renamed = {"k": "num_directions", "seeds": "seeds", "methods": "methods"}
    declared = literal_defaults(compare, list(renamed) + [f.name for f in dataclasses.fields(CompareConfig)])
    assert set(declared) == set(renamed)  # the rest come from CompareConfig through **settings
    as_config = {renamed[n]: tuple(v) if isinstance(v, (list, tuple)) else v for n, v in declared.items()}
    assert as_config == {field: getattr(CompareConfig(), field) for field in as_config}


@pytest.mark.parametrize("module, function, argv, config_class", [
    ("latentdirs.gan.train", "train_gan", ["train-gan"], GANTrainConfig),
    ("latentdirs.saliency.train", "train_unet", ["saliency", "train", "--data", "pairs"], UNetTrainConfig),
])
def test_training_commands_pass_their_config_to_the_api(module, function, argv, config_class, tmp_path, monkeypatch):
    import importlib

    from latentdirs.cli import main
    api = importlib.import_module(module)
    # declared once: the API takes the config and declares no default of its own for its fields
    assert literal_defaults(getattr(api, function), [f.name for f in dataclasses.fields(config_class)]) == {}
    seen = []
    monkeypatch.setattr(api, function, lambda *args, **kwargs: seen.append(
        next(a for a in (*args, *kwargs.values()) if isinstance(a, config_class))) or tmp_path)
    out = ["--out", str(tmp_path / "out")]
    assert main(argv + out) == 0 and main(argv + out + ["--steps", "7", "--seed", "3"]) == 0
    assert seen == [config_class(), config_class(steps=7, seed=3)]


@pytest.mark.parametrize("command, function", [
    ("saliency find-direction", "latentdirs.saliency.direction:rank_directions"),
    ("saliency make-data", "latentdirs.saliency.masks:write_dataset"),
    ("saliency select-classes", "latentdirs.saliency.classes:select_classes"),
    ("saliency eval", "latentdirs.saliency.train:evaluate"),
])
def test_saliency_steps_default_to_their_api(command, function):
    # steps without a config dataclass: each option that is also a keyword of the API defaults as the API does
    import importlib
    module, name = function.split(":")
    actions = {a.dest: a for a in subparser(command)._actions}
    declared = literal_defaults(getattr(importlib.import_module(module), name), list(actions))
    assert len(declared) >= 2, declared
    for dest, api_default in declared.items():
        default = actions[dest].default
        if isinstance(default, str) and actions[dest].type is not None:
            default = actions[dest].type(default)  # argparse parses a string default, as a typed value
        as_list = (lambda v: list(v) if isinstance(v, (list, tuple)) else v)
        assert as_list(default) == as_list(api_default), f"{command} {flag(dest)}"


class Captured(Exception):
    """Raised by a stand-in for the API once it has recorded what the command line passed it."""


def test_edit_and_invert_share_one_config(tmp_path, monkeypatch):
    import latentdirs.editing
    from PIL import Image

    from latentdirs import DirectionSet
    from latentdirs.cli import main
    from latentdirs.inversion import InversionConfig, invert
    assert literal_defaults(invert, [f.name for f in dataclasses.fields(InversionConfig)]) == {}
    seen = []

    def edit_image(generator, images, directions, index, shifts, encoder=None, config=None):
        seen.append(config)
        raise Captured

    monkeypatch.setattr(latentdirs.editing, "edit_image", edit_image)
    DirectionSet.random(16, 2, seed=0).save(tmp_path / "set")
    Image.new("RGB", (32, 32), (90, 120, 200)).save(tmp_path / "a.png")
    edit = ["edit", str(tmp_path / "a.png"), "--directions", str(tmp_path / "set"), "--direction", "0",
            "--generator", "planted", "--out", str(tmp_path / "edits")]
    for extra in ([], ["--steps", "5", "--no-per-layer"]):
        with pytest.raises(Captured):
            main(edit + extra)
    # per_layer: the command line's default is auto (resolve_per_layer: off for the planted generator in z)
    assert seen == [InversionConfig(), InversionConfig(steps=5)]


def config_classes() -> list[type]:
    """Every dataclass of the package that declares POSITIVE or CHOICES fields: the configs of its jobs."""
    import importlib
    import pkgutil

    import latentdirs
    found = {}
    for info in pkgutil.walk_packages(latentdirs.__path__, "latentdirs."):
        if info.name.endswith("__main__"):  # importing it runs the command line
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (dataclasses.is_dataclass(value) and isinstance(value, type) and value.__module__ == info.name
                    and (getattr(value, "POSITIVE", ()) or getattr(value, "CHOICES", {}))):
                found[value.__qualname__] = value
    return [found[name] for name in sorted(found)]


def test_the_census_finds_every_job_config():
    names = {cls.__name__ for cls in config_classes()}
    assert {"DiscoveryConfig", "CompareConfig", "SweepConfig", "RCAConfig", "GANTrainConfig", "UNetTrainConfig",
            "InversionConfig"} <= names, names


@pytest.mark.parametrize("cls", config_classes(), ids=lambda cls: cls.__name__)
def test_a_config_with_a_value_its_class_forbids_cannot_be_made(cls):
    # a config that exists is valid: the Python API refuses what the command line's types refuse
    for name in getattr(cls, "POSITIVE", ()):
        for bad in (0, -3):
            with pytest.raises(ValueError, match=f"{name} must be a positive integer, got {bad}"):
                cls(**{name: bad})
    for name in getattr(cls, "CHOICES", {}):
        with pytest.raises(ValueError, match=f"{name} must be one of .*, got 'nonsense'"):
            cls(**{name: "nonsense"})
    # every int and float field refuses what the command line's parsers refuse: below 0, NaN, infinite
    for f in dataclasses.fields(cls):
        kind = str(f.type).removesuffix(" | None")
        for bad in {"int": (-1, 1.5, True), "float": (-0.5, float("nan"), float("inf"))}.get(kind, ()):
            with pytest.raises(ValueError, match=f"{f.name} must be "):
                cls(**{f.name: bad})
    cls()  # the defaults pass


def test_job_entry_points_refuse_a_forbidden_value_before_any_work(tmp_path):
    from latentdirs import DirectionSet
    from latentdirs.evaluation.rca import rca
    from latentdirs.gan.train import train_gan
    from latentdirs.generators import load_generator
    from latentdirs.inversion import InversionError, invert
    from latentdirs.sweep import sweep
    planted = load_generator("planted")
    with pytest.raises(ValueError, match="eval_batches must be a positive integer, got 0"):
        rca(planted, DirectionSet.random(planted.latent_dim, 3, seed=0), eval_batches=0)  # was a ZeroDivisionError
    with pytest.raises(ValueError, match="lr must be > 0"):
        rca(planted, DirectionSet.random(planted.latent_dim, 3, seed=0), lr=0.0)
    with pytest.raises(InversionError, match="batch_size must be a positive integer"):  # was range()'s error
        invert(planted, torch.zeros(1, 3, 32, 32), batch_size=0, progress=False)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        train_gan(out_dir=tmp_path / "out", steps=0)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        sweep(planted, {"num_directions": [2]}, out_dir=tmp_path / "out", workers=0)
    with pytest.raises(ValueError, match="num_directions must be a positive integer"):
        sweep(planted, {"num_directions": [0]}, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before a folder was made
