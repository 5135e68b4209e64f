"""The file kinds now live in `baocao.run.sources` (one module per kind). This name stays for the report
side of `pipeline.py`, whose `load_report` asks which petition sources have delivered an export."""

from __future__ import annotations

from baocao.run.sources.petitions import delivered_petition_sources

__all__ = ["delivered_petition_sources"]
