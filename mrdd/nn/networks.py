"""The four networks of a view, built from the backbone or from the user's own class.

A model asks for each view's encoder and decoder by *role* (``consistency_encoder``,
``consistency_decoder``, ``specific_encoder``, ``specific_decoder``; the contract of each
is in :class:`mrdd.config.NetworksConfig` and docs/networks.md). With no spec for the role and
view in ``model.networks`` the backbone's network is built (:func:`make_encoder`,
:func:`make_decoder`), exactly as before user networks existed. A user network is built
as ``Class(shape=..., **kwargs)`` (an encoder) or ``Class(in_features=..., shape=...,
**kwargs)`` (a decoder) and run once on a dummy batch of two samples, so a network that
returns the wrong shape is refused at build time, naming the view, the role and the
shapes, rather than failing deep inside the first training step.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import Tensor, nn

from mrdd.config import NETWORK_ROLES, ConfigError, ModelConfig, NetworksConfig, resolve_target
from mrdd.nn.blocks import make_decoder, make_encoder

#: Samples in the dummy batch that checks a user network at build time.
DUMMY_BATCH = 2


def network_spec(networks: NetworksConfig, role: str, view: int) -> dict[str, Any] | None:
    """The spec of ``role`` for ``view`` (``None``: the backbone's network)."""
    value = getattr(networks, role)
    if not value:
        return None
    if "_target_" in value:
        return dict(value)
    spec = value.get(f"view_{view}")
    return None if spec is None else dict(spec)


def check_network_views(networks: NetworksConfig, num_views: int) -> None:
    """Refuse a per-view spec (``view_<v>``) for a view the data do not have."""
    for role in NETWORK_ROLES:
        value = getattr(networks, role)
        if "_target_" in value:
            continue
        for name in value:
            if int(str(name).removeprefix("view_")) >= num_views:
                raise ConfigError(
                    f"model.networks.{role}.{name} names a view the data do not have: they "
                    f"have {num_views} views, view_0 … view_{num_views - 1}."
                )


def build_encoder(
    cfg: ModelConfig, role: str, view: int, shape: tuple[int, ...]
) -> tuple[nn.Module, int]:
    """The encoder of ``view`` for ``role`` and the size F of the features it returns."""
    spec = network_spec(cfg.networks, role, view)
    if spec is None:
        encoder = make_encoder(shape, cfg.backbone)
        return encoder, encoder.out_features
    where = _where(role, view, spec)
    encoder = _construct(spec, where, shape=shape)
    out = _dummy_output(encoder, (DUMMY_BATCH, *shape), where)
    if out.ndim != 2 or out.shape[0] != DUMMY_BATCH or out.shape[1] == 0:
        raise ConfigError(
            f"{where} must return flat features N×F; given a dummy batch "
            f"{_dims((DUMMY_BATCH, *shape))} it returned {_dims(out.shape)} (expected "
            f"{DUMMY_BATCH}×F, F > 0)."
        )
    return encoder, int(out.shape[1])


def build_decoder(
    cfg: ModelConfig, role: str, view: int, in_features: int, shape: tuple[int, ...]
) -> nn.Module:
    """The decoder of ``view`` for ``role``: an ``N×in_features`` code → ``N×shape``."""
    spec = network_spec(cfg.networks, role, view)
    if spec is None:
        return make_decoder(in_features, shape, cfg.backbone)
    where = _where(role, view, spec)
    decoder = _construct(spec, where, in_features=in_features, shape=shape)
    out = _dummy_output(decoder, (DUMMY_BATCH, in_features), where)
    if tuple(out.shape) != (DUMMY_BATCH, *shape):
        raise ConfigError(
            f"{where} must return the view, N×{_dims(shape)}; given a dummy code "
            f"{_dims((DUMMY_BATCH, in_features))} it returned {_dims(out.shape)} (expected "
            f"{_dims((DUMMY_BATCH, *shape))})."
        )
    return decoder


def _where(role: str, view: int, spec: dict[str, Any]) -> str:
    """How an error names the network: its role, its view and its class."""
    return f"model.networks.{role} ({spec['_target_']}) of view {view}"


def _construct(spec: dict[str, Any], where: str, **given: Any) -> nn.Module:
    """``spec['_target_'](**given, **kwargs)``, which must be a :class:`torch.nn.Module`."""
    kwargs = {k: v for k, v in spec.items() if k != "_target_"}
    clash = sorted(set(kwargs) & set(given))
    if clash:
        raise ConfigError(
            f"{where}: {clash} are passed by mrdd (the view's sizes); drop them from the spec."
        )
    factory = resolve_target(spec["_target_"], f"{where}: _target_")
    try:
        network = factory(**given, **kwargs)
    except Exception as err:  # the user's constructor: its message, named
        raise ConfigError(
            f"{where}: building it with {given} and the spec's {kwargs} failed: {_first_line(err)}"
        ) from None
    if not isinstance(network, nn.Module):
        raise ConfigError(f"{where} built a {type(network).__name__}, not a torch.nn.Module.")
    return network


@torch.no_grad()
def _dummy_output(network: nn.Module, dims: tuple[int, ...], where: str) -> Tensor:
    """``network`` run on zeros of ``dims`` in eval mode (no BatchNorm statistic moves,
    no random number is drawn), its training mode restored."""
    training = network.training
    network.eval()
    try:
        out = network(torch.zeros(dims))
    except Exception as err:  # the user's forward: its message, named
        raise ConfigError(
            f"{where} failed on a dummy batch {_dims(dims)}: {_first_line(err)}"
        ) from None
    finally:
        network.train(training)
    if not isinstance(out, Tensor):
        raise ConfigError(f"{where} returned a {type(out).__name__}, not a tensor.")
    return out


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _dims(shape: tuple[int, ...] | torch.Size) -> str:
    return "×".join(map(str, shape)) or "a scalar"


#: The stages whose networks ``encoders=`` / ``decoders=`` name (:func:`networks_section`).
STAGES = ("consistency", "specific")


def networks_section(encoders: Any = None, decoders: Any = None) -> dict[str, dict[str, Any]]:
    """The roles of ``model.networks`` that the Python API's ``encoders=`` / ``decoders=``
    set (a role not named is left out).

    Each is ``None`` (names no role), one network for both stages, or
    ``{"consistency": ..., "specific": ...}`` (a stage left out is not named). A
    network is a class, its import path, or a spec ``{"_target_": Class, **kwargs}``;
    ``[net_0, None, ...]`` or ``{0: net_0, ...}`` give one per view (``None``: the
    backbone's). A class is recorded by its import path, so that a checkpoint can name it.
    """
    section: dict[str, dict[str, Any]] = {}
    for kind, given in (("encoder", encoders), ("decoder", decoders)):
        if given is None:
            continue
        per_stage = given if _is_per_stage(given) else dict.fromkeys(STAGES, given)
        for stage, choice in per_stage.items():
            role = f"{stage}_{kind}"
            section[role] = {} if choice is None else _role_value(choice, role)
    return section


def _is_per_stage(given: Any) -> bool:
    return isinstance(given, dict) and bool(given) and set(given) <= set(STAGES)


def _role_value(choice: Any, role: str) -> dict[str, Any]:
    """A role's ``model.networks`` value: one spec, or ``{view_<v>: spec}``."""
    if isinstance(choice, list | tuple):
        choice = dict(enumerate(choice))
    if isinstance(choice, dict) and choice and all(isinstance(k, int) for k in choice):
        return {
            f"view_{v}": _spec(net, f"the {role} given for view {v}")
            for v, net in choice.items()
            if net is not None
        }
    return _spec(choice, f"the {role} given")


def _spec(network: Any, where: str) -> dict[str, Any]:
    """A network (class, import path, or ``{"_target_": ..., **kwargs}``) as a config spec."""
    spec = dict(network) if isinstance(network, dict) else {"_target_": network}
    target = spec.get("_target_")
    if isinstance(target, type | types.FunctionType):
        path = f"{target.__module__}.{target.__qualname__}"
        if "<locals>" in path or resolve_target(path, where) is not target:
            raise ConfigError(
                f"{where}: {target.__qualname__} cannot be named by an import path (it is "
                "defined inside a function); define it at the top level of a module so that "
                "a checkpoint can name it."
            )
        spec["_target_"] = path
    resolve_target(spec["_target_"], f"{where}: _target_")
    return spec
