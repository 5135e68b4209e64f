"""Storage: the warehouse's write paths (batches, merges, the catalogue, scores), staged batch files,
and the submission ledger. Above the connectors, transforms and expectations; below the run."""
