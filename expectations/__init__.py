"""Expectations (`baocao.expectations`): the Great Expectations suites (dossiers, one per report) and the one
runner; `gx_adapter`, the one package that patches or leans on GX's internals, installed by the runner.
They import only the core."""
