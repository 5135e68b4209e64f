"""Source kinds as types: every kind of the core's settings is registered in `baocao.run.sources` with its
connector and storage, and no production code outside that registry branches on a source's kind."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from baocao.core.sources import SOURCE_KINDS, SourceSettings
from baocao.run.sources import KINDS, Storage, kind_named

ROOT = Path(__file__).resolve().parents[2]
# Production code: the package and the folders it links (the simulators are test doubles).
PRODUCTION = ("baocao", "connectors", "transforms", "expectations", "dags")
REGISTRY = ROOT / "baocao" / "run" / "sources"
SETTINGS_CLASSES = frozenset(settings.__name__ for settings in SOURCE_KINDS.values())


def test_every_kind_is_registered_with_its_settings_connector_and_storage() -> None:
    assert list(KINDS) == list(SOURCE_KINDS)
    for name, kind in KINDS.items():
        assert kind.settings is SOURCE_KINDS[name] and kind.name == name
        assert kind.connector.__name__.startswith("baocao.connectors.")
    assert {name: kind.storage for name, kind in KINDS.items()} == {
        "rest_onestop": Storage.STAGED,
        "sql_legacy": Storage.STAGED,
        "catalogue_xml": Storage.STORED_WHOLE,
        "commune_csv": Storage.STAGED,
        "petition_csv": Storage.UPSERTED,
        "ict_workbook": Storage.STORED_WHOLE,
        "egov_workbook": Storage.STORED_WHOLE,
    }


def test_an_unknown_kind_is_named() -> None:
    with pytest.raises(Exception, match="no source kind 'ftp'"):
        kind_named("ftp")


def _mentions_kind(node: ast.expr) -> bool:
    """`kind`, `x.kind`, `x["kind"]`: a kind, of a source or of something else."""
    if isinstance(node, ast.Name):
        return node.id == "kind"
    if isinstance(node, ast.Attribute):
        return node.attr == "kind"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "kind"
    return False


def _text_constants(tree: ast.Module) -> dict[str, str]:
    """The module's names bound to a text literal (`AGENCY, SUMMARY = "AGENCY", "SUMMARY"`)."""
    found: dict[str, str] = {}
    for statement in tree.body:
        if not isinstance(statement, ast.Assign):
            continue
        for target in statement.targets:
            pairs = (
                zip(target.elts, statement.value.elts, strict=False)
                if isinstance(target, ast.Tuple) and isinstance(statement.value, ast.Tuple)
                else [(target, statement.value)]
            )
            for name, value in pairs:
                if isinstance(name, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found[name.id] = value.value
    return found


def _another_kind(node: ast.expr, constants: dict[str, str]) -> bool:
    """A kind that is not a source's: a report row's (`Kind.TOTAL`, "TOTAL", `SUMMARY`, or several)."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(_another_kind(element, constants) for element in node.elts)
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id == "Kind"
    if isinstance(node, ast.Name):
        return node.id in constants and constants[node.id] not in SOURCE_KINDS
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value not in SOURCE_KINDS


def kind_branches(source: str, filename: str = "<code>") -> list[str]:
    """Where the code branches on a source's kind: compares a kind (or a source kind's name), matches on
    one, or asks whether a source is of a kind's settings class."""
    tree = ast.parse(source, filename)
    constants = _text_constants(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and all(
            isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
        ):
            operands = [node.left, *node.comparators]
            by_name = any(isinstance(operand, ast.Constant) and operand.value in SOURCE_KINDS for operand in operands)
            others = [operand for operand in operands if not _mentions_kind(operand)]
            # A kind compared with another kind, or with anything but a report row's kind.
            by_kind = len(others) < len(operands) and not (
                others and all(_another_kind(operand, constants) for operand in others)
            )
            if by_name or by_kind:
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Match) and _mentions_kind(node.subject):
            found.append(f"{filename}:{node.lineno}: match {ast.unparse(node.subject)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "issubclass")
            and len(node.args) == 2
            and any(
                isinstance(name, ast.Name) and name.id in SETTINGS_CLASSES - {SourceSettings.__name__}
                for name in ast.walk(node.args[1])
            )
        ):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return sorted(set(found), key=lambda line: int(line.split(":")[1]))


def _production_files() -> list[Path]:
    files = []
    for folder in PRODUCTION:
        # os.walk does not follow the links in baocao/ (connectors, ...): each folder is read once.
        for directory, _, names in os.walk(ROOT / folder):
            files += [Path(directory) / name for name in names if name.endswith(".py")]
    return sorted(files)


def test_the_scan_finds_branches_on_a_source_kind() -> None:
    branches = kind_branches(
        'if source.kind == "rest_onestop": pass\n'
        "if source.kind in FILE_KINDS or batch['kind'] not in DOSSIER_KINDS: pass\n"
        'if name != "commune_csv": pass\n'
        "match source.kind:\n    case _: pass\n"
        "if isinstance(source, SqlLegacySource): pass\n"
        "rivals = [name for name in names if config.source(name).kind == source.kind]\n"
    )
    assert [line.split(": ", 1)[0] for line in branches] == [
        "<code>:1",
        "<code>:2",
        "<code>:2",
        "<code>:3",
        "<code>:4",
        "<code>:6",
        "<code>:7",
    ]
    # A report row's kind is another kind; None checks and sort keywords are no branches on one.
    assert not kind_branches(
        'SUMMARY = "SUMMARY"\nrows = report[report["kind"] == "TOTAL"]\nif r.kind == Kind.ROW: pass\n'
        "if row['kind'] in (Kind.ROW, Kind.SECTION) or row['kind'] == SUMMARY: pass\n"
        'if kind is None: pass\nframe.sort_values("code", kind="stable")\n'
    )


def test_no_production_code_outside_the_registry_branches_on_a_source_kind() -> None:
    files = [path for path in _production_files() if REGISTRY not in path.parents]
    assert len(files) > 50 and ROOT / "baocao" / "run" / "pipeline.py" in files
    found = [
        branch
        for path in files
        for branch in kind_branches(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == [], "branch on a source's kind outside baocao/run/sources:\n" + "\n".join(found)
