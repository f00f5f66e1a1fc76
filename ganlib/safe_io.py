"""Bounded readers for every text file a user hands ganlib: parameter files, study files, run files.

Each reader checks before it allocates: the path is a regular file (a FIFO would block forever, `/dev/zero`
would fill memory), its size is under a limit, and the parsed data expands to at most `MAX_VALUES` values nested
at most `MAX_DEPTH` deep (a 435-byte YAML alias bomb is a few shared objects in memory and hundreds of millions
of values to anything that walks it: papermill translating parameters, an error message printing it). Errors
are `InputFileError` (a ValueError) naming the file and what is wrong with it, and never echo more than a short
excerpt of a value.
"""
from __future__ import annotations

import json
import os
import reprlib
import stat
from typing import Any

MAX_TEXT_BYTES = 1 << 20  # 1 MiB: parameter, study and run files are a few KiB
MAX_VALUES = 100_000
MAX_DEPTH = 64


class InputFileError(ValueError):
    """A file given to ganlib cannot be read safely; the message names it and says why."""


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 6, 6, 6
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 80


def excerpt(value: Any, most: int = 80) -> str:
    """A short repr of `value` for an error message: values can be 50 MB strings, or lists sharing themselves
    9^9 times that a plain repr would never finish printing."""
    text = _SHORT.repr(value)
    return text if len(text) <= most else text[: most - 1] + "…"


def regular_file_size(path, what: str = "file") -> int:
    """The size of `path`, a regular file (symlinks followed); FIFOs, devices, sockets and folders refused."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise InputFileError(f"{what} {path} cannot be read ({e.strerror}).") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a pipe, device or socket)"
        raise InputFileError(f"{what} {path} is {kind}; give the path of a file.")
    return info.st_size


def read_bytes(path, max_bytes: int = MAX_TEXT_BYTES, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `max_bytes` (checked before and while reading: a file can grow)."""
    size = regular_file_size(path, what)
    if size > max_bytes:
        raise InputFileError(f"{what} {path} is {size:,} bytes; at most {max_bytes:,} are read.")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputFileError(f"{what} {path} is more than {max_bytes:,} bytes; at most {max_bytes:,} are read.")
    return data


def read_text(path, max_bytes: int = MAX_TEXT_BYTES, what: str = "file") -> str:
    data = read_bytes(path, max_bytes, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputFileError(f"{what} {path} is not UTF-8 text ({e.reason} at byte {e.start}).") from None


def check_size(data, where: str, limit: int = MAX_VALUES, depth: int = MAX_DEPTH) -> None:
    """Refuse data that expands to more than `limit` values or nests deeper than `depth`, walking it without
    building anything (shared objects are counted each time they appear, as anything printing them would)."""
    count, stack = 0, [(data, 0)]
    while stack:
        item, level = stack.pop()
        count += 1
        if isinstance(item, str):
            count += len(item) // 100  # a long string repeated by aliases costs like many values
        if count > limit:
            raise InputFileError(f"{where} expands to more than {limit:,} values (YAML aliases `*name` repeating "
                                 "large parts?); write the values out.")
        if isinstance(item, (dict, list, tuple)):
            if level >= depth:
                raise InputFileError(f"{where} is nested more than {depth} levels deep.")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)


def parse_yaml(text: str, where: str, loader=None) -> Any:
    """YAML text (safe loader: plain data only) with its size checked; errors name `where` and the position."""
    import yaml

    try:
        data = yaml.load(text, Loader=loader or yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InputFileError(f"{where} is not valid YAML{at}: {e.problem or e.context}.") from None
    except yaml.YAMLError as e:
        raise InputFileError(f"{where} is not valid YAML: {excerpt(str(e), 200)}") from None
    except RecursionError:
        raise InputFileError(f"{where} is nested too deeply to be read.") from None
    except ValueError as e:  # e.g. an integer of thousands of digits (Python's int-conversion limit)
        raise InputFileError(f"{where} holds a value that cannot be read: {excerpt(str(e), 200)}") from None
    check_size(data, where)
    return data


def load_yaml(path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES, loader=None) -> Any:
    return parse_yaml(read_text(path, max_bytes, what), f"{what} {path}", loader)


def load_json(path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """A JSON file, bounded like `load_yaml`; `FileNotFoundError` passes through (callers decide)."""
    data = read_bytes(path, max_bytes, what)
    try:
        value = json.loads(data)
    except RecursionError:
        raise InputFileError(f"{what} {path} is nested too deeply to be read.") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, digit limits
        raise InputFileError(f"{what} {path} is not valid JSON ({excerpt(str(e), 200)}).") from None
    check_size(value, f"{what} {path}")
    return value
