"""Expectations (`baocao.expectations`): the Great Expectations suites (dossiers, one per report) and the one
runner, with the adapters that patch GX. They import only the core."""
