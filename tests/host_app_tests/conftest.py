"""Fixtures of the host-app tests: the FER model parsed by the CLI, once per test module."""
from __future__ import annotations

import pytest

import data_sources as ds


@pytest.fixture(scope="module")
def fer_har(tmp_path_factory):
    """`host-app parse` of the FER model with its preset (pre-processing and labels recorded)."""
    from host_app import cli

    out = tmp_path_factory.mktemp("har") / "fer.har"
    assert cli.main(["parse", str(ds.fer_model_path()), "--name", "fer", "--preset", "fer",
                     "-o", str(out)]) == 0
    return out
