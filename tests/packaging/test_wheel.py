"""What ships: one import name, `baocao`, with the central's schemas and the rulesets, and no simulator."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    uv = shutil.which("uv")
    assert uv, "uv builds the wheel (the README's commands install it)"
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(out), str(ROOT)], check=True, capture_output=True)
    (wheel,) = out.glob("baocao-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_holds_one_top_level_name(wheel_names: list[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"baocao"}


def test_the_wheel_has_every_layer_and_its_data(wheel_names: list[str]) -> None:
    for module in (
        "baocao/core/periods.py",
        "baocao/connectors/rest_onestop.py",
        "baocao/transforms/tthc.py",
        "baocao/expectations/runner.py",
        "baocao/expectations/gx_adapter/__init__.py",
        "baocao/expectations/gx_adapter/keys_only.py",
        "baocao/storage/warehouse.py",
        "baocao/run/pipeline.py",
        "baocao/airflow/dags.py",
        "baocao/transforms/schemas/submission-v1.xsd",
        "baocao/transforms/schemas/submission-v1.schema.json",
        "baocao/transforms/rulesets/service_index/766-v1.yaml",
    ):
        assert module in wheel_names, module


def test_the_wheel_has_no_simulator(wheel_names: list[str]) -> None:
    assert not [name for name in wheel_names if "simulators" in name]


def test_the_production_image_copies_no_simulator() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    production = dockerfile.split(" AS sandbox")[0]
    assert "simulators" not in re.sub(r"#.*", "", production)
    assert "--no-editable" in production


def test_the_wheel_has_the_warehouse_migrations(wheel_names: list[str]) -> None:
    """`baocao db upgrade` and connect run Alembic from the installed package: env.py and every revision."""
    versions = ROOT / "baocao" / "storage" / "migrations" / "versions"
    revisions = sorted(path.name for path in versions.glob("[0-9]*_*.py"))
    assert revisions and revisions[0].startswith("0001_")
    for name in (
        "env.py",
        "__init__.py",
        "script.py.mako",
        "versions/__init__.py",
        *[f"versions/{r}" for r in revisions],
    ):
        assert f"baocao/storage/migrations/{name}" in wheel_names, name
