"""NVlabs stylegan2-ada-pytorch / stylegan3 network pickles (``*.pkl``), behind an explicit trust flag.

These files are Python pickles that embed the networks' *code*: opening one runs that code, and
it imports ``torch_utils`` and ``dnnlib`` from the NVlabs repository, so

1. it is refused unless you pass ``trust_pickle=True`` (CLI: ``--trust-pickle``), and
2. the repository must be importable: ``git clone https://github.com/NVlabs/stylegan3`` and pass
   ``nvlabs_repo="/path/to/stylegan3"`` (or put it on ``PYTHONPATH``). Its ``legacy.py`` is used when
   present, which also reads the original TensorFlow pickles.

The adapter calls ``G.mapping`` / ``G.synthesis`` with ``noise_mode="const"`` (deterministic), in
the z, w or w+ space with the same meaning as the rosinality StyleGAN2 adapter
(:mod:`latentdirs.generators.stylegan2`): in w+, :meth:`NVlabsGenerator.shifted` moves only ``layers``.
"""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import torch
from torch import nn

from .base import GeneratorError, StyleSpaceGenerator
from .checkpoints import CheckpointError

REFUSAL = ("{path} is an NVlabs network pickle: loading it runs code stored in the file. latentdirs does not "
           "open such files unless you say you trust them: pass trust_pickle=True (CLI: --trust-pickle), and make "
           "the NVlabs repository importable (nvlabs_repo='/path/to/stylegan3' or PYTHONPATH) because the pickle "
           "imports its torch_utils and dnnlib packages. Only do this for files from a source you trust.")


def load_nvlabs_pickle(path: str | Path, trust_pickle: bool = False, nvlabs_repo: str | Path | None = None,
                       network: str = "G_ema") -> nn.Module:
    """The ``G_ema`` module (or ``network``) of an NVlabs pickle; refuses without ``trust_pickle=True``."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such file: {path}")
    _check_pickle_stream(path)  # a damaged file is damaged whether trusted or not: say so, not "trust it"
    if not trust_pickle:
        raise CheckpointError(REFUSAL.format(path=path))
    if nvlabs_repo is not None and str(nvlabs_repo) not in sys.path:
        sys.path.insert(0, str(nvlabs_repo))
    try:
        with open(path, "rb") as fh:
            try:
                import legacy  # NVlabs' loader; also converts TensorFlow-era pickles
                data = legacy.load_network_pkl(fh)
            except ImportError:
                data = pickle.load(fh)
    except ModuleNotFoundError as exc:
        raise CheckpointError(
            f"{path} needs the module {exc.name!r} from the NVlabs repository to unpickle. Clone "
            "https://github.com/NVlabs/stylegan3 (or stylegan2-ada-pytorch) and pass nvlabs_repo='/path/to/it' "
            "or add it to PYTHONPATH.") from exc
    except (pickle.UnpicklingError, EOFError) as exc:
        raise CheckpointError(f"could not read {path}: truncated or not a pickle ({exc}).") from exc
    if isinstance(data, dict):
        if network not in data:
            raise CheckpointError(f"{path} has no {network!r}; it holds {sorted(map(str, data))}.")
        data = data[network]
    if not isinstance(data, nn.Module):
        raise CheckpointError(f"{path}: expected a torch module, found {type(data).__name__}.")
    return data


def _check_pickle_stream(path: Path) -> None:
    """Walk the pickle's opcodes without executing any (pickletools): empty, truncated or random bytes are
    refused as such, before the question of trusting the file comes up."""
    import pickletools
    if path.is_dir() or path.stat().st_size == 0:
        raise CheckpointError(f"could not read {path}: " + ("a directory" if path.is_dir() else "the file is empty")
                              + "; an NVlabs network is one .pkl file.")
    with open(path, "rb") as fh:
        try:
            for _ in pickletools.genops(fh):
                pass
        except Exception as exc:  # ValueError, EOFError, struct.error ...: not a whole pickle
            raise CheckpointError(f"could not read {path}: truncated or not a pickle ({type(exc).__name__}: "
                                  f"{str(exc)[:120]}). Download it again and compare its size with the published one."
                                  ) from None


class NVlabsGenerator(StyleSpaceGenerator):
    """An NVlabs ``G`` (``z_dim``, ``c_dim``, ``mapping``, ``synthesis``) behind the protocol."""

    def __init__(self, network: nn.Module, space: str = "z", layers=None, truncation: float = 1.0,
                 classes: int | None = None, noise_mode: str = "const") -> None:
        super().__init__()
        self.set_style_space(space, layers, int(network.mapping.num_ws), truncation)
        self.network = network
        self.name = "nvlabs"
        self.latent_dim = int(network.z_dim if space == "z" else network.w_dim)
        self.noise_mode = noise_mode
        c_dim = int(getattr(network, "c_dim", 0))
        if isinstance(classes, (list, tuple)):
            if len(classes) != 1:
                raise GeneratorError("the NVlabs adapter takes one class (classes=INDEX).")
            classes = classes[0]
        if c_dim and classes is None:
            raise GeneratorError(f"this generator is conditional on {c_dim} classes: pass classes=INDEX.")
        label = torch.zeros(1, c_dim)
        if c_dim:
            label[0, int(classes)] = 1
        self.register_buffer("label", label, persistent=False)

    def _labels(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return self.label.expand(batch, -1).to(like)

    def mapped(self, z: torch.Tensor) -> torch.Tensor:
        """w (B, w_dim), truncated by the network itself (all num_ws copies are equal)."""
        return self.network.mapping(z, self._labels(z.shape[0], z), truncation_psi=self.truncation)[:, 0]

    def sample_latents(self, num, generator=None, device=None):
        # z has z_dim values, which need not be latent_dim (w_dim) in w / w+
        z = torch.randn(num, int(self.network.z_dim), generator=generator,
                        device=generator.device if generator is not None else self.device)
        if self.latent_space == "z":
            return z.to(device or self.device)
        with torch.no_grad():
            return self.mapped(z.to(self.device)).to(device or self.device)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return self.network.synthesis(ws, noise_mode=self.noise_mode)

    def with_classes(self, classes: list[int]) -> "NVlabsGenerator":
        if not self.label.shape[1]:  # unconditional network (c_dim = 0)
            return super().with_classes(classes)
        if len(classes) != 1:
            raise GeneratorError(f"the NVlabs adapter takes one class, got {list(classes)}.")
        layers = self.layers if self.latent_space == "w+" else None
        gen = NVlabsGenerator(self.network, space=self.latent_space, layers=layers, truncation=self.truncation,
                              classes=int(classes[0]), noise_mode=self.noise_mode)
        return self.respecified(gen.freeze(), classes=int(classes[0])).to(self.device)

    def first_layer_weight(self) -> torch.Tensor | None:
        if self.latent_space == "z":
            return None
        # style affines of the synthesis layers (toRGB excluded), each scaled by its weight gain
        weights = [m.weight * getattr(m, "weight_gain", 1.0) for name, m in self.network.synthesis.named_modules()
                   if name.endswith("affine") and "torgb" not in name]
        return torch.cat(weights).detach() if weights else None

    def describe(self) -> dict:
        info = {**super().describe(), "kind": "nvlabs-pickle", "truncation": self.truncation,
                "num_ws": self.num_ws, "noise_mode": self.noise_mode}
        if self.latent_space == "w+":
            info["layers"] = list(self.layers)
        return info


def load(path: str | Path, trust_pickle: bool = False, nvlabs_repo: str | Path | None = None, space: str = "z",
         layers=None, truncation: float = 1.0, classes: int | None = None, noise_mode: str = "const") -> NVlabsGenerator:
    """Load an NVlabs ``.pkl`` (stylegan2-ada-pytorch, stylegan3); see the module docstring."""
    network = load_nvlabs_pickle(path, trust_pickle=trust_pickle, nvlabs_repo=nvlabs_repo).float().cpu()
    return NVlabsGenerator(network, space=space, layers=layers, truncation=truncation, classes=classes,
                           noise_mode=noise_mode).freeze()
