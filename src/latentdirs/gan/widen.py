"""Warm starts: carry a trained run's weights into a bigger or differently regularized network.

Two function-preserving moves, so the new run starts exactly where the old one stopped and
every later difference is what training made of the change:

- **widening** (Net2Net-style, with zeros instead of copies): a layer grows new output
  channels, initialised like a fresh network; every weight by which an *old* output would
  read a *new* channel is zero. The new channels are computed but contribute nothing, and
  their gradients flow at once through those zero weights. BatchNorm is per channel, so the
  old channels' statistics and styles are untouched (in training mode too).
- **folding spectral norm** into a critic's weights (W / sigma from the stored power-iteration
  vectors), for a critic whose spectral norm is replaced by an R1 penalty.

Both work on state dicts: ``old`` (trained) and ``fresh`` (the new network's own initialisation,
which supplies the new entries), so they do not depend on the module classes.
"""
from __future__ import annotations

import torch


def _leading(shape: torch.Size) -> tuple[slice, ...]:
    return tuple(slice(0, n) for n in shape)


def widen_tensor(old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """``fresh`` with ``old`` in its leading block; old outputs (dim 0) never read new inputs (dim 1)."""
    if old.dim() != fresh.dim() or any(o > f for o, f in zip(old.shape, fresh.shape)):
        raise ValueError(f"cannot widen a tensor of shape {tuple(old.shape)} to {tuple(fresh.shape)}")
    if old.shape == fresh.shape:
        return old.clone()
    out = fresh.detach().clone()
    out[_leading(old.shape)] = old
    if old.dim() >= 2 and fresh.shape[1] > old.shape[1]:
        out[:old.shape[0], old.shape[1]:] = 0  # conv (out, in, k, k): the new inputs of old outputs
    return out


def widen_state_dict(old: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor of ``fresh`` (the wider network) filled from ``old``; the keys must match."""
    if old.keys() != fresh.keys():
        missing, extra = sorted(fresh.keys() - old.keys()), sorted(old.keys() - fresh.keys())
        raise ValueError(f"the networks differ in layers, not only in width (missing {missing}, extra {extra})")
    return {name: widen_tensor(old[name], fresh[name]) for name in fresh}


def widen_adam_state(old: dict, new_parameters: list[torch.Tensor]) -> dict:
    """An Adam ``state_dict`` for the widened parameters, so training resumes without a reset.

    Old entries keep their moments. New entries get a zero first moment and, as their second
    moment, the mean of the old entries of the same tensor: with the tensor's step count near
    100k there is no bias correction left, so a zero second moment would make their first
    updates up to 1/sqrt(1 - beta2) = 32x the learning rate; the mean lets them move at
    the pace of their neighbours from the first step.
    """
    state = {}
    for index, moments in old["state"].items():
        fresh = new_parameters[int(index)]
        exp_avg = torch.zeros_like(fresh)
        exp_avg[_leading(moments["exp_avg"].shape)] = moments["exp_avg"]
        exp_avg_sq = torch.full_like(fresh, moments["exp_avg_sq"].mean().item())
        exp_avg_sq[_leading(moments["exp_avg_sq"].shape)] = moments["exp_avg_sq"]
        state[index] = {**moments, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    return {"state": state, "param_groups": old["param_groups"]}


def fold_spectral_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A spectral-norm module's state dict -> the plain module's, with the same function.

    ``torch.nn.utils.parametrizations.spectral_norm`` stores ``original`` and the power-iteration
    vectors ``u``, ``v``; the weight it uses (in eval mode, no further iteration) is
    ``original / (u . W v)`` with W the weight flattened to (out, -1).
    """
    folded = {}
    for name, value in state.items():
        if name.endswith(".parametrizations.weight.original"):
            prefix = name[: -len(".parametrizations.weight.original")]
            u = state[f"{prefix}.parametrizations.weight.0._u"]
            v = state[f"{prefix}.parametrizations.weight.0._v"]
            sigma = torch.dot(u, value.flatten(1) @ v)
            folded[f"{prefix}.weight"] = value / sigma
        elif ".parametrizations.weight.0._" not in name:
            folded[name] = value
    return folded
