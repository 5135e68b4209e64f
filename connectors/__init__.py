"""Connectors (`baocao.connectors`): the department systems in (one-stop REST, legacy SQL, catalogue XML,
workbooks and CSV exports) and the central endpoint out, over one HTTP client. They import only the core."""
