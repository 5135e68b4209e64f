"""The domain core: periods, agencies, errors, settings types, the canonical dossier's vocabulary, the
warehouse's table definitions and each report's row layout. It imports nothing else of the project."""
