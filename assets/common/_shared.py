"""Dagster configs derived from the pure parameter types, so each default is written once.

A model family's parameters are one frozen dataclass in its pure module (``AlsParams``,
``Item2VecParams``, ...). :func:`params_config` makes the Dagster ``Config`` the launchpad shows
from it: the same field names (or a recorded renaming), types, defaults and descriptions (from the
dataclass's numpydoc ``Attributes``). A pipeline default that must differ is an *override*,
declared with its reason; ``tests/test_params_defaults.py`` fails on any other difference.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from assets.common.tuned import adopted_fields


def field_docs(params_type: type) -> dict[str, str]:
    """``field -> description`` from the numpydoc ``Attributes`` (or ``Parameters``) section of a
    dataclass's docstring."""
    doc = params_type.__doc__ or ""
    m = re.search(r"\n\s*(Attributes|Parameters)\n\s*-+\n(.*?)(\n\s*\n\s*\S+\n\s*-+\n|\Z)", doc, re.S)
    out: dict[str, str] = {}
    if not m:
        return out
    name, lines = None, []
    for line in m.group(2).splitlines():
        head = re.match(r"\s{0,4}(\w+(?:\s*,\s*\w+)*)\s*:", line)
        if head and not line.startswith(" " * 8):
            if name:
                out.update(dict.fromkeys(name, " ".join(lines)))
            name, lines = [n.strip() for n in head.group(1).split(",")], []
        elif line.strip():
            lines.append(line.strip())
    if name:
        out.update(dict.fromkeys(name, " ".join(lines)))
    return out


def params_defaults(params_type: type) -> dict[str, Any]:
    """``field -> default`` of a dataclass (``default_factory`` called; required fields left out)."""
    out = {}
    for f in dataclasses.fields(params_type):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def params_config(
    params_type: type,
    name: str,
    doc: str,
    *,
    base: type = dg.Config,
    only: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    rename: dict[str, str] | None = None,
    overrides: dict[str, tuple[Any, str]] | None = None,
    extra: dict[str, tuple[Any, Any, str]] | None = None,
) -> type[dg.Config]:
    """A Dagster ``Config`` class whose fields are ``params_type``'s.

    Parameters
    ----------
    params_type : dataclass type
        The pure parameter type: field names, types, defaults and descriptions come from it.
    name, doc : str
        The class name and docstring (the launchpad shows the docstring).
    base : Config subclass
        Methods the config needs (e.g. ``params()``); fields from other bases are kept.
    only, exclude : tuple of str
        The parameter fields to expose (all by default) and those to leave out.
    rename : dict, optional
        ``param field -> config field`` where the config's name must differ (kept run configs).
    overrides : dict, optional
        ``param field -> (pipeline default, reason)``: a deliberate, documented difference.
    extra : dict, optional
        ``config field -> (type, default, description)``: pipeline-only fields (not parameters).
    """
    rename, overrides = rename or {}, overrides or {}
    hints, docs, defaults = (
        typing.get_type_hints(params_type),
        field_docs(params_type),
        params_defaults(params_type),
    )
    unknown = (set(only) | set(exclude) | set(rename) | set(overrides)) - set(defaults)
    if unknown:
        raise ValueError(f"{name}: {sorted(unknown)} are not {params_type.__name__} fields")
    fields: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for f, default in defaults.items():
        if (only and f not in only) or f in exclude:
            continue
        if f in overrides:
            default, reason = overrides[f]
            if not reason.strip():
                raise ValueError(f"{name}.{f}: an override needs its reason")
        key = rename.get(f, f)
        mapping[f] = key
        fields[key] = (hints[f], Field(default=default, description=docs.get(f)))
    for key, (tp, default, description) in (extra or {}).items():
        fields[key] = (tp, Field(default=default, description=description))
    # Defined in the caller's module, as namedtuple does (Dagster and the docs name it from there).
    cls = create_model(
        name, __base__=base, __module__=sys._getframe(1).f_globals.get("__name__", __name__), **fields
    )
    cls.__doc__ = doc
    cls.__params_fields__ = {params_type: mapping}
    cls.__overrides__ = {rename.get(f, f): reason for f, (_, reason) in overrides.items()}
    return cls


def derived_fields(config_type: type) -> dict[type, dict[str, str]]:
    """``params type -> {param field: config field}`` over a config class and its bases."""
    out: dict[type, dict[str, str]] = {}
    for c in reversed(config_type.__mro__):
        out.update(c.__dict__.get("__params_fields__", {}))
    return out


def declared_overrides(config_type: type) -> dict[str, str]:
    """``config field -> reason`` of every deliberate override, over the class and its bases."""
    out: dict[str, str] = {}
    for c in reversed(config_type.__mro__):
        out.update(c.__dict__.get("__overrides__", {}))
    return out


def param_values(config: dg.Config, params_type: type) -> dict[str, Any]:
    """``param field -> value`` of the ``params_type`` fields a config exposes."""
    return {f: getattr(config, key) for f, key in derived_fields(type(config))[params_type].items()}


def params_of(config: dg.Config, params_type: type, **changes):
    """The ``params_type`` instance a config describes (fields it does not expose keep their
    defaults; ``changes`` supply required fields or replace values)."""
    return params_type(**{**param_values(config, params_type), **changes})


def default_drift(config_type: type) -> list[str]:
    """Every field default of ``config_type`` that differs from its parameter type's default and is
    not a declared override (empty when the config states the pure defaults)."""
    overrides, bad = declared_overrides(config_type), []
    for params_type, mapping in derived_fields(config_type).items():
        pure = params_defaults(params_type)
        for f, key in mapping.items():
            got = config_type.model_fields[key].get_default(call_default_factory=True)
            if got != pure[f] and key not in overrides:
                bad.append(
                    f"{config_type.__name__}.{key} = {got!r}, but {params_type.__name__}.{f} = {pure[f]!r}"
                )
    return bad


class TunedParamsConfig(dg.Config):
    """Base of a model family's config: :meth:`params` builds the family's parameters."""

    def params(self, tuned: dict | None = None):
        """These fields as the family's parameter type, with the searched fields that ``tuned``
        (the tuning asset's output) adopted when the config has ``use_tuned`` set."""
        (params_type,) = derived_fields(type(self))
        p = params_of(self, params_type)
        return dataclasses.replace(p, **adopted_fields(tuned)) if getattr(self, "use_tuned", False) else p
