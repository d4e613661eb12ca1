"""YAML loading that keeps where every value came from.

``load_yaml`` returns plain Python data plus a map from a path of keys/indexes to (line, column),
1-based, so that a pydantic error at ``("providers", "klaviyo", "api_key_env")`` can be reported
at the right place in the user's file.
"""

from __future__ import annotations

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


def load_yaml(file: Path) -> Positioned:
    try:
        text = file.read_text(encoding="utf-8")
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
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError([Issue(file, None, None, f"cannot read the file: {exc}")]) from None
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
    result.data = _build(root, (), result, issues)
    if issues:
        raise PlanError(issues)
    return result


def _build(node: yaml.Node, loc: Loc, out: Positioned, issues: list[Issue]) -> Any:
    out.positions[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
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
            mapping[key] = _build(value_node, child, out, issues)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*loc, i), out, issues) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return (
            yaml.load(yaml.serialize(node), Loader=_Loader)
            if node.tag != ("tag:yaml.org,2002:str")
            else node.value
        )
    return None
