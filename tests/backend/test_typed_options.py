"""The typed options the backend's commands hand to domain code equal the contract's request."""

from __future__ import annotations

import argparse
from dataclasses import fields, replace

import pytest

from backend.contract.bands import parse_band_list
from backend.contract.requests import ACTIONS, DEFAULTS, Request
from backend.inference.resolve import InputOptions
from tests.test_contract import _plugin_requests, parse_with_backend

#: InputOptions fields the contract's Request carries too (the rest the plugin never sets).
SHARED = ("optical", "sar", "embeddings", "model", "bounds", "bounds_crs", "window", "overlap", "batch_size",
          "device", "cache_dir", "optical_units", "sar_units", "sensor", "normalise")


def _expected(request: Request, name: str) -> object:
    """The value the backend should see for ``name``: the request's, else the backend's default
    (``--window``/``--overlap`` stay ``None``: the model's default applies when embedding)."""
    value = getattr(request, name)
    if name in ("window", "overlap"):
        return value
    return DEFAULTS[name] if value is None and name in DEFAULTS else value


def test_typed_input_options_equal_every_plugin_request():
    checked = 0
    for request in _plugin_requests():
        if request.action not in ACTIONS or request.action == "vectorise":
            continue  # info, import-weights and vectorise read no encoder inputs
        argv = request.to_argv()
        options = InputOptions.from_args(parse_with_backend(argv))
        request = Request.from_argv(argv)  # the contract's reading of the same argv
        offered = {option.dest for option in request.options()}
        for name in SHARED:
            if name in offered:
                assert getattr(options, name) == _expected(request, name), (name, argv)
        for name in ("optical_bands", "sar_bands"):
            value = getattr(options, name)
            assert (parse_band_list(value) if value else None) == getattr(request, name), name
        checked += 1
    assert checked > 100


def test_input_options_are_frozen_and_complete():
    args = parse_with_backend(["cluster", "--optical", "a.tif", "--k", "3", "--out", "o.tif"])
    options = InputOptions.from_args(args)
    assert {f.name for f in fields(InputOptions)} - {"normalise"} <= set(vars(args))
    with pytest.raises(AttributeError):
        options.window = 8  # type: ignore[misc]
    assert replace(options, optical="b.tif").optical == "b.tif" and options.optical == "a.tif"
    # A command without --embeddings / --normalise: the field is absent, not a repeated default.
    embed = InputOptions.from_args(parse_with_backend(["embed", "--optical", "a.tif", "--out", "e.tif"]))
    assert embed.embeddings is None and embed.normalise == "none"


def test_from_args_refuses_a_namespace_without_the_input_options():
    with pytest.raises(TypeError):
        InputOptions.from_args(argparse.Namespace(optical="a.tif"))
