"""Builds the toolkit: the cffi extension `hailort_py._native` from the C sources in native/,
and the Python packages.

    pip install .              the runtime: hailort_py, the device server, RemoteDevice (no TensorFlow)
    pip install '.[emulator]'  + the emulator (TensorFlow)
    pip install '.[app]'       + everything the `host-app` command needs (the emulator included)

`host-app` without its extra names the missing package and this command, and exits 2."""
from setuptools import find_packages, setup

EMULATOR = ["tensorflow-cpu==2.21.*", "tqdm>=4.66", "matplotlib>=3.8", "jinja2>=3.1"]
APP = EMULATOR + ["opencv-python-headless>=4.9", "rich>=13"]

setup(
    name="hailo-toolkit",
    version="0.1.0",
    description="Host stream layer, chip emulator and host app for Hailo-style accelerators",
    packages=find_packages(include=["hailort_py*", "emulator*", "host_app*"]),
    package_data={"emulator": ["data/*", "analysis/templates/*"], "host_app": ["templates/*"]},
    python_requires=">=3.10",
    setup_requires=["cffi>=1.16"],
    cffi_modules=["hailort_py/_build.py:ffibuilder"],
    # the runtime: stream layer, device interface, device server and RemoteDevice (no TensorFlow)
    install_requires=["numpy>=1.26", "cffi>=1.16", "pyzmq>=25", "msgpack>=1.0"],
    extras_require={"emulator": EMULATOR, "app": APP},
    entry_points={
        "console_scripts": ["host-app=host_app.cli:main"],
        # device drivers, found by name by the device server (hailort_py.drivers)
        "hailort_py.drivers": ["emulator = emulator.device:open_emulated_device",
                               "hailort = hailort_py.hailort_driver:open_hailort_device"],
    },
    zip_safe=False,
)
