"""Transforms (`baocao.transforms`): canonical records, each report's aggregation and assembly, XML/JSON
rendering against the central's schemas, signing, diffs and exports. Pure: they import only the core."""
