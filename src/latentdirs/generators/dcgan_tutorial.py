"""The PyTorch DCGAN-tutorial generator, the most common home-trained GAN format.

Format (pytorch/tutorials ``dcgan_faces_tutorial.py`` and the many projects built from it): a
module whose ``main`` is an ``nn.Sequential`` of ``ConvTranspose2d`` / ``BatchNorm2d`` with
parameter-free layers between them (ReLU, Dropout, ..., Tanh at the end), saved as a bare state
dict (``main.0.weight``, ``main.1.running_mean``, ...) or inside a wrapper dict
(``netG_state_dict``, ``generator``, ``state_dict``, ``G``, ``model``, ``netG``).

Everything is read from the state dict: the latent size nz (the first layer's input width), the
widths, the depth (4x4 seed, then one doubling per layer: 32 px for 4 layers, 64 px for 5,
... 256 px for 7), where the parameter-free layers sit (the gaps between indices), and the image
channels. Kernels are the tutorial's: the first 4x4 with stride 1, padding 0, then 4x4 with
stride 2, padding 1. In eval mode the first parameter-free layer after a batch norm is the
activation (``activation="relu"``, or ``"leaky_relu"`` with ``negative_slope``); any further ones
(Dropout) are the identity; the output goes through tanh.

Class-conditional variants (a cDCGAN) concatenate a one-hot label to z before the first layer,
``cat([z, one_hot], 1)``; its input width is then nz + labels, which the file cannot split: name
one of ``label_dim=`` or ``latent_dim=``. The latent stays z; the classes are an option, as for
BigGAN: ``classes`` is a class, a list of classes (sample i of a batch gets
``classes[i % len(classes)]``, so G(z) and G(z + shift) of one batch share their classes) or
None for all of them. With ``class_names`` a class can be given by name.

SeFa (``first_layer_weight``) factorizes the z rows of the first transposed convolution
``(nz [+ labels], C, 4, 4)``, as (C * 16, nz).

    >>> G = load_generator("dcgan-tutorial", "netG.pth")                        # nz from the file
    >>> G = load_generator("dcgan-tutorial", "cgan.pth", label_dim=8, classes=[1, 5])
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import is_integer, is_number
from .base import Generator, GeneratorError
from .checkpoints import CheckpointError, guess_kind, load_strict, read_checkpoint, wrong_kind_error

KIND = "dcgan-tutorial"
WRAPPER_KEYS = ("netG_state_dict", "generator", "state_dict", "G", "model", "netG", "state_dict_G")
EXPECTED = ("an nn.Sequential `main` of ConvTranspose2d / BatchNorm2d layers: 'main.0.weight' of shape "
            "(nz, C, 4, 4), 'main.1.weight' / 'running_mean' ..., 4x4 kernels, the last layer (C, 3 or 1, 4, 4)")
_KEY = re.compile(r"^(?:module\.)?(?:main\.)?(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def unwrap(checkpoint, source: str) -> dict[str, torch.Tensor]:
    """The generator's state dict, with keys ``main.N.*``, from a bare state dict or a wrapper dict."""
    if isinstance(checkpoint, Mapping):
        for key in WRAPPER_KEYS:
            if isinstance(checkpoint.get(key), Mapping):
                return unwrap(checkpoint[key], source)
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        raise wrong_kind_error(checkpoint, KIND, source, EXPECTED)
    state, other = {}, []
    for key, value in checkpoint.items():
        match = _KEY.match(str(key))
        if match is None or not isinstance(value, torch.Tensor):
            other.append(str(key))
        else:
            state[f"main.{match[1]}.{match[2]}"] = value
    if other or not state:
        guess = guess_kind(checkpoint)
        raise CheckpointError(
            f"{source} is not a {KIND} checkpoint: expected {EXPECTED}"
            + (f"; the wrapper keys {', '.join(WRAPPER_KEYS)} are looked into" if not state else "")
            + f". Found {_describe(checkpoint)}" + (f" (not of that form: {', '.join(other[:6])})" if other and state else "")
            + "." + (f" It looks like a {guess} checkpoint." if guess else ""))
    return state


def _describe(checkpoint: Mapping, limit: int = 8) -> str:
    items = [f"{k} {list(v.shape)}" if isinstance(v, torch.Tensor) else f"{k} ({type(v).__name__})"
             for k, v in list(checkpoint.items())[:limit]]
    return "{" + ", ".join(items) + (", ..." if len(checkpoint) > limit else "") + "}"


def infer_layout(state: Mapping[str, torch.Tensor], source: str) -> dict:
    """The architecture a ``main.N.*`` state dict implies, or an error that says what does not fit.

    Returns ``{"layers": [(index, "conv", (in, out, bias)) | (index, "bn", channels) | (index, "act") |
    (index, "identity")], "in_channels", "widths", "image_channels", "image_size", "dropout"}``.
    """
    params: dict[int, dict[str, tuple]] = {}
    for key, value in state.items():
        _, index, name = key.split(".")
        params.setdefault(int(index), {})[name] = tuple(value.shape)
    indices = sorted(params)

    def where() -> str:
        return ", ".join(f"main.{i}: " + ", ".join(f"{n} {list(s)}" for n, s in params[i].items()) for i in indices[:6]) + (
            ", ..." if len(indices) > 6 else "")

    def refuse(problem: str) -> CheckpointError:
        return CheckpointError(f"{source} does not fit the {KIND} layout: {problem}. Expected {EXPECTED}. "
                               f"Found {where()}.")

    kinds = []
    for i in indices:
        p = params[i]
        if len(p.get("weight", ())) == 4:
            if set(p) - {"weight", "bias"}:
                raise refuse(f"main.{i} has a 4-D weight and {sorted(set(p) - {'weight', 'bias'})}")
            kinds.append("conv")
        elif {"weight", "bias", "running_mean", "running_var"} <= set(p) and len(p["weight"]) == 1:
            kinds.append("bn")
        else:
            raise refuse(f"main.{i} is neither a ConvTranspose2d (4-D weight) nor a BatchNorm2d "
                         f"(weight, bias, running_mean, running_var): it holds {sorted(p)}")
    if indices[0] != 0 or kinds[0] != "conv":
        raise refuse("the first layer (main.0) must be a ConvTranspose2d taking the latent")
    if kinds[-1] != "conv":
        raise refuse(f"the last layer with parameters (main.{indices[-1]}) must be the ConvTranspose2d to the image")

    layers: list[tuple] = []
    widths: list[int] = []
    previous_out = None
    for n, (i, kind) in enumerate(zip(indices, kinds)):
        p = params[i]
        if kind == "conv":
            c_in, c_out, kh, kw = p["weight"]
            if (kh, kw) != (4, 4):
                raise refuse(f"main.{i} has a {kh}x{kw} kernel; the tutorial layout uses 4x4 kernels "
                             "(the first with stride 1 and padding 0, the others stride 2, padding 1)")
            if previous_out is not None and c_in != previous_out:
                raise refuse(f"main.{i} takes {c_in} channels but the layer before gives {previous_out}")
            if "bias" in p and p["bias"] != (c_out,):
                raise refuse(f"main.{i}.bias is {list(p['bias'])}, expected [{c_out}]")
            layers.append((i, "conv", (c_in, c_out, "bias" in p)))
            widths.append(c_out)
            previous_out = c_out
        else:
            if kinds[n - 1] != "conv" or indices[n - 1] != i - 1:
                raise refuse(f"the BatchNorm2d main.{i} does not follow a ConvTranspose2d directly")
            if p["weight"][0] != previous_out:
                raise refuse(f"the BatchNorm2d main.{i} has {p['weight'][0]} channels, the conv before gives {previous_out}")
            layers.append((i, "bn", previous_out))
        if n + 1 < len(indices):
            gap = indices[n + 1] - i - 1  # parameter-free layers between this one and the next
            if kinds[n + 1] == "conv":
                if gap < 1:
                    raise refuse(f"no activation between main.{i} and the ConvTranspose2d main.{indices[n + 1]}")
                layers.append((i + 1, "act"))
                layers += [(j, "identity") for j in range(i + 2, indices[n + 1])]
            elif gap:
                raise refuse(f"{gap} layer(s) between the ConvTranspose2d main.{i} and its BatchNorm2d")
    image_channels = widths[-1]
    if image_channels not in (1, 3):
        raise refuse(f"the last layer main.{indices[-1]} makes {image_channels} channels; images have 1 or 3")
    num_convs = kinds.count("conv")
    return {"layers": layers, "in_channels": params[0]["weight"][0], "widths": widths[:-1],
            "image_channels": image_channels, "image_size": 4 * 2 ** (num_convs - 1),
            "dropout": [j for j, kind, *_ in layers if kind == "identity"]}


class DCGANTutorialNetwork(nn.Module):
    """The ``main`` Sequential rebuilt with the file's indices, so its state dict loads strictly.

    Parameter-free slots hold ReLU (or LeakyReLU) and Identity (a Dropout, in eval mode); a Tanh
    follows the last convolution, as in the tutorial.
    """

    def __init__(self, layout: dict, activation: str = "relu", negative_slope: float = 0.2) -> None:
        super().__init__()
        if activation not in ("relu", "leaky_relu"):
            raise GeneratorError(f"activation={activation!r}: expected 'relu' or 'leaky_relu'.")
        if not is_number(negative_slope) or not math.isfinite(negative_slope):  # else a TypeError in forward()
            raise GeneratorError(f"negative_slope={negative_slope!r}: expected a finite number such as 0.2.")
        slots: dict[int, nn.Module] = {}
        first = True
        for index, kind, *args in layout["layers"]:
            if kind == "conv":
                c_in, c_out, bias = args[0]
                stride, padding = (1, 0) if first else (2, 1)
                slots[index] = nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=bias)
                first = False
            elif kind == "bn":
                slots[index] = nn.BatchNorm2d(args[0])
            elif kind == "act":
                slots[index] = nn.ReLU() if activation == "relu" else nn.LeakyReLU(negative_slope)
            else:
                slots[index] = nn.Identity()
        last = max(slots)
        slots[last + 1] = nn.Tanh()
        self.main = nn.Sequential(*(slots[i] for i in range(last + 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class DCGANTutorialGenerator(Generator):
    """A DCGAN-tutorial generator behind the protocol: latent z ~ N(0, I); classes fixed by an option."""

    latent_space = "z"
    provenance: dict | None = None
    """Where the weights came from (the zoo sets package, version, sha256), recorded by describe()."""

    def __init__(self, network: DCGANTutorialNetwork, layout: dict, latent_dim: int, classes=None,
                 class_names: Sequence[str] | None = None, name: str = KIND) -> None:
        super().__init__()
        self.network = network
        self.layout = layout
        self.latent_dim = int(latent_dim)
        self.num_classes = int(layout["in_channels"]) - self.latent_dim
        self.class_names = tuple(class_names) if class_names else None
        self.name = name
        if self.class_names and len(self.class_names) != self.num_classes:
            raise GeneratorError(f"{len(self.class_names)} class names for {self.num_classes} label inputs")
        chosen = self._class_indices(classes)
        self.class_option = classes
        self.register_buffer("classes", torch.as_tensor(chosen, dtype=torch.long), persistent=False)

    def _class_indices(self, classes) -> list[int]:
        if not self.num_classes:
            if classes is not None:
                raise GeneratorError(f"{self.name} is not class-conditional (its first layer takes only z, "
                                     f"{self.latent_dim} channels): drop classes={classes!r}.")
            return []
        if classes is None:
            return list(range(self.num_classes))
        names = self.class_names or ()
        chosen = []
        for c in [classes] if isinstance(classes, (int, str)) or not hasattr(classes, "__iter__") else list(classes):
            if not (is_integer(c) or isinstance(c, str)):  # 1.5 was cut to class 1
                raise GeneratorError(f"classes={classes!r}: a class is an index (an int) or a class name, got {c!r}.")
            if isinstance(c, str) and not c.lstrip("-").isdigit():
                if c not in names:
                    raise GeneratorError(f"classes: unknown class {c!r}; "
                                         + (f"the classes are {', '.join(names)}" if names else
                                            f"give indices in [0, {self.num_classes})") + ".")
                c = names.index(c)
            chosen.append(int(c))
        if not chosen or min(chosen) < 0 or max(chosen) >= self.num_classes:
            raise GeneratorError(f"classes={classes!r}: classes must be in [0, {self.num_classes})"
                                 + (f" ({', '.join(names)})" if names else "") + ".")
        return chosen

    def class_vectors(self, batch: int) -> torch.Tensor:
        """One-hot labels for a batch: sample i gets ``classes[i % len(classes)]``."""
        index = self.classes[torch.arange(batch, device=self.classes.device) % len(self.classes)]
        return F.one_hot(index, self.num_classes).float()

    def network_input(self, latent: torch.Tensor) -> torch.Tensor:
        if self.num_classes:
            latent = torch.cat([latent, self.class_vectors(latent.shape[0]).to(latent)], dim=1)
        return latent[:, :, None, None]

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.network(self.network_input(latent))

    def with_classes(self, classes: list) -> "DCGANTutorialGenerator":
        if not self.num_classes:
            return super().with_classes(classes)
        gen = DCGANTutorialGenerator(self.network, self.layout, self.latent_dim, classes=list(classes),
                                     class_names=self.class_names, name=self.name)
        gen.provenance = self.provenance
        return self.respecified(gen.freeze(), classes=list(classes)).to(self.device)

    def first_layer_weight(self) -> torch.Tensor:
        weight = self.network.main[0].weight.detach()[:self.latent_dim]  # (nz, C, 4, 4): the z rows only
        return weight.flatten(1).t()

    def early_features(self, latent: torch.Tensor) -> torch.Tensor:
        # the 4x4 seed (first transposed convolution), GANSpace's usual first layer
        return self.network.main[0](self.network_input(latent)).flatten(1)

    def describe(self) -> dict:
        info = {**super().describe(), "kind": self.name,
                "architecture": f"dcgan-tutorial-{self.layout['image_size']}px-" + "-".join(map(str, self.layout["widths"])),
                "image_size": self.layout["image_size"], "image_channels": self.layout["image_channels"]}
        if self.num_classes:
            info.update(num_classes=self.num_classes, classes=self.classes.tolist(), classes_option=self.class_option)
            if self.class_names:
                info["class_names"] = list(self.class_names)
        if self.provenance:
            info["source"] = dict(self.provenance)
        return info


def from_state_dict(checkpoint, source: str = "state dict", latent_dim: int | None = None,
                    label_dim: int | None = None, classes=None, class_names: Sequence[str] | None = None,
                    activation: str = "relu", negative_slope: float = 0.2,
                    name: str = KIND) -> DCGANTutorialGenerator:
    """The generator of a loaded checkpoint (bare state dict or wrapper dict); see :func:`load`."""
    for key, value in (("latent_dim", latent_dim), ("label_dim", label_dim)):
        if value is not None and not is_integer(value):
            raise GeneratorError(f"{key}={value!r}: expected an int (or leave it out: it is read from the file).")
    if class_names is not None and (isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names)):
        # a string would give one class per character
        raise GeneratorError(f"class_names={class_names!r}: expected a list of names (strings), one per class.")
    state = unwrap(checkpoint, source)
    layout = infer_layout(state, source)
    width = int(layout["in_channels"])
    if latent_dim is not None and label_dim is not None and latent_dim + label_dim != width:
        raise CheckpointError(f"{source}: latent_dim={latent_dim} + label_dim={label_dim} = {latent_dim + label_dim}, "
                              f"but the first layer main.0 takes {width} channels.")
    if label_dim is None and latent_dim is None and class_names:
        label_dim = len(class_names)
    if latent_dim is None:
        latent_dim = width - (label_dim or 0)
    if not 0 < latent_dim <= width:
        raise CheckpointError(f"{source}: the first layer main.0 takes {width} channels (z plus any one-hot label), "
                              f"so latent_dim={latent_dim} (label_dim={width - latent_dim}) cannot be right.")
    network = DCGANTutorialNetwork(layout, activation, negative_slope)
    note = (f"inferred: {layout['image_size']} px, {layout['image_channels']} channels, widths "
            f"{layout['widths']}, nz {latent_dim}" + (f" + {width - latent_dim} labels" if width > latent_dim else "")
            + (f", identity (Dropout) at {layout['dropout']}" if layout["dropout"] else ""))
    load_strict(network, state, KIND, source, config_note=note)
    return DCGANTutorialGenerator(network, layout, latent_dim, classes=classes, class_names=class_names,
                                  name=name).freeze()


def load(path: str | Path, latent_dim: int | None = None, label_dim: int | None = None, classes=None,
         class_names: Sequence[str] | None = None, activation: str = "relu", negative_slope: float = 0.2,
         trust_pickle: bool = False) -> DCGANTutorialGenerator:
    """Load a DCGAN-tutorial generator checkpoint (bare state dict or a wrapper dict), read weights-only.

    ``latent_dim`` / ``label_dim``: for a class-conditional file, one of them (the first layer takes
    nz + labels channels); ``classes``: a class, a list (cycled over a batch) or None (all);
    ``class_names``: names for the classes, so that ``classes`` can name them; ``activation``:
    ``"relu"`` (the tutorial) or ``"leaky_relu"`` (with ``negative_slope``).
    """
    checkpoint = read_checkpoint(path, trust_pickle=trust_pickle, kind=KIND)
    return from_state_dict(checkpoint, str(path), latent_dim=latent_dim, label_dim=label_dim, classes=classes,
                           class_names=class_names, activation=activation, negative_slope=negative_slope)
