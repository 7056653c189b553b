"""The two kinds of error the CLI reports without a traceback.

UsageError  the command line asks for something that cannot work: a missing file, a directory
            without images, a file of the wrong kind, an invalid option value. Exit code 2.
AppError    the command ran and failed: a model that cannot be parsed, a quantization that
            fails, a host pipeline that is not byte-identical to the emulator. Exit code 1.
Both carry a message that names the file, layer or stream involved and says what to do.
Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class HostAppError(Exception):
    exit_code = 1


class UsageError(HostAppError):
    exit_code = 2


class AppError(HostAppError):
    exit_code = 1
