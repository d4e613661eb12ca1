"""YAML loading that keeps where every value came from.

``load_yaml`` returns plain Python data plus a map from a path of keys/indexes to (line, column),
1-based, so that a pydantic error at ``("providers", "klaviyo", "api_key_env")`` can be reported
at the right place in the user's file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # the C loader is several times faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

from warmup.errors import Issue, PlanError

Loc = tuple[str | int, ...]


@dataclass
class Positioned:
    data: Any
    file: Path
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def where(self, loc: Loc, *, key: bool = False) -> tuple[int, int] | None:
        """Position of ``loc``, or of its nearest ancestor that has one."""
        probe = tuple(loc)
        table = self.key_positions if key else self.positions
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.key_positions:
                return self.key_positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))


# A plan or scenario is a page of YAML: anything larger is a mistake (or an attack), and is
# refused before it is read.
MAX_FILE_BYTES = 1024 * 1024
# Values built from one file, aliases expanded: bounds a "billion laughs" alias bomb, which
# would otherwise grow to gigabytes from a few hundred bytes.
MAX_VALUES = 100_000
_CORE_TAG = "tag:yaml.org,2002:"
# YAML refuses these anyway, but without saying where: a NUL, a binary file's bytes.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _line_col(data: bytes | str, offset: int) -> tuple[int, int]:
    newline: bytes | str = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset) + 1  # type: ignore[arg-type]
    start = data.rfind(newline, 0, offset) + 1  # type: ignore[arg-type]
    return line, offset - start + 1


def _read(file: Path) -> str:
    """The file's text; located errors for a file too large, not UTF-8, or holding control
    characters (a NUL, a binary file)."""
    try:
        if file.exists() and not file.is_file():
            # a folder, /dev/zero, a pipe: stat says nothing of how much it holds
            raise PlanError(
                [
                    Issue(
                        file,
                        None,
                        None,
                        "not a regular file (a folder, a device or a pipe)",
                        "name the plan or scenario file itself",
                    )
                ]
            )
        with file.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # never more, whatever stat said
        if len(raw) > MAX_FILE_BYTES:
            raise PlanError(
                [
                    Issue(
                        file,
                        None,
                        None,
                        f"the file is larger than {MAX_FILE_BYTES:,} bytes; a plan or "
                        f"scenario is at most {MAX_FILE_BYTES:,}",
                        "check that this is the right file",
                    )
                ]
            )
    except FileNotFoundError:
        raise PlanError(
            [
                Issue(
                    file,
                    None,
                    None,
                    "file not found",
                    "check the path, relative to where you run warmup",
                )
            ]
        ) from None
    except OSError as exc:
        raise PlanError([Issue(file, None, None, f"cannot read the file: {exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        raise PlanError(
            [
                Issue(
                    file,
                    line,
                    col,
                    f"byte 0x{raw[exc.start]:02X} is not UTF-8 text",
                    "save the file as UTF-8 (a plan is a text file, not a binary one)",
                )
            ]
        ) from None
    control = _CONTROL.search(text)
    if control is not None:
        line, col = _line_col(text, control.start())
        raise PlanError(
            [
                Issue(
                    file,
                    line,
                    col,
                    f"control character U+{ord(control.group()):04X} in the text",
                    "remove it: a plan holds only printable text",
                )
            ]
        )
    return text


def load_yaml(file: Path) -> Positioned:
    text = _read(file)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or "invalid YAML"
        raise PlanError(
            [
                Issue(
                    file,
                    line,
                    col,
                    f"YAML syntax error: {problem}",
                    "check indentation and quoting on this line",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise PlanError([Issue(file, None, None, f"YAML error: {exc}")]) from None
    result = Positioned(data=None, file=file)
    if root is None:
        result.data = None
        return result
    issues: list[Issue] = []
    try:
        result.data = _build(root, (), result, issues, [0])
    except _TooManyValues as exc:
        raise PlanError(
            [
                Issue(
                    file,
                    exc.line,
                    exc.column,
                    f"more than {MAX_VALUES:,} values once aliases are expanded",
                    "write the values out instead of nesting `*aliases` of aliases",
                )
            ]
        ) from None
    if issues:
        raise PlanError(issues)
    return result


class _TooManyValues(Exception):
    def __init__(self, line: int, column: int) -> None:
        self.line, self.column = line, column


def _build(
    node: yaml.Node, loc: Loc, out: Positioned, issues: list[Issue], count: list[int]
) -> Any:
    where = (node.start_mark.line + 1, node.start_mark.column + 1)
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise _TooManyValues(*where)
    out.positions[loc] = where
    if not node.tag.startswith(_CORE_TAG):
        issues.append(
            Issue(
                out.file,
                *where,
                f"unknown YAML tag `{node.tag}`",
                "remove the tag: plans and scenarios use plain YAML values",
            )
        )
        return None
    if isinstance(node, yaml.MappingNode):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            # Keys are words: YAML 1.1 would read `yes:`, `no:` and `on:` as booleans.
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                issues.append(
                    Issue(
                        out.file,
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        "a key must be a plain word",
                    )
                )
                continue
            if key in mapping:
                issues.append(
                    Issue(
                        out.file,
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        f"`{key}` appears twice in this block",
                        "keep one of them",
                    )
                )
            child: Loc = (*loc, key)
            out.key_positions[child] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            mapping[key] = _build(value_node, child, out, issues, count)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*loc, i), out, issues, count) for i, item in enumerate(node.value)]
    try:
        return _scalar(node)
    except (ValueError, OverflowError, yaml.YAMLError):
        value = node.value if isinstance(node, yaml.ScalarNode) else ""
        kind = node.tag.removeprefix(_CORE_TAG)
        issues.append(
            Issue(
                out.file,
                *where,
                f"`{value}` is not a valid {'date' if kind == 'timestamp' else kind}",
                "write a real date like 2026-12-01"
                if kind == "timestamp"
                else "quote it if it is meant as text",
            )
        )
        return None


def _scalar(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return (
            yaml.load(yaml.serialize(node), Loader=_Loader)
            if node.tag != ("tag:yaml.org,2002:str")
            else node.value
        )
    return None
