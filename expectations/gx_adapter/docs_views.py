"""Data Docs page views that keep GX's compiled Jinja templates on disk beside the Data Docs.

GX builds a new Jinja environment for every page it writes, so each run recompiled the same
fifty-odd templates (0.35 s of a 5M-row batch's validation, whatever the batch's size). These views
are GX's own with Jinja's file-system bytecode cache: the HTML is the same, and a template is
compiled only the first time any run sees it (Jinja checks each cached entry against a checksum of
the template's source, so a GX upgrade recompiles). `expectations.runner` configures the Data Docs
site to use them (`expectations.gx_adapter.data_docs_site`) through GX's `view` setting of the site's
index and section builders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView


class _CompiledOnDisk:
    """Mixed into a GX Jinja view: its environment keeps compiled templates in `bytecode_directory`."""

    env: jinja2.Environment

    def __init__(self, *args: Any, bytecode_directory: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if bytecode_directory:
            Path(bytecode_directory).mkdir(parents=True, exist_ok=True)
            self.env.bytecode_cache = jinja2.FileSystemBytecodeCache(bytecode_directory)


class PageView(_CompiledOnDisk, DefaultJinjaPageView):
    pass


class IndexPageView(_CompiledOnDisk, DefaultJinjaIndexPageView):
    pass


def site_config(site: dict[str, Any], bytecode_directory: Path) -> dict[str, Any]:
    """A Data Docs site's configuration with its index and sections rendered by these views."""

    def view(cls: type) -> dict[str, str]:
        return {"module_name": __name__, "class_name": cls.__name__, "bytecode_directory": str(bytecode_directory)}

    sections = dict(site.get("site_section_builders") or {})
    for name in ("expectations", "validations", "profiling"):
        section = sections.get(name)
        if section is None or isinstance(section, dict):  # a section switched off stays off
            sections[name] = {**(section or {}), "view": view(PageView)}
    return {
        **site,
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            **(site.get("site_index_builder") or {}),
            "view": view(IndexPageView),
        },
        "site_section_builders": sections,
    }
