"""Simulator of a province's one-stop-shop system (Một cửa điện tử): REST API and its data.

`generator` builds deterministic data sets (and calibrated ones reproducing published II.06a
totals), `expected_results` classifies dossiers independently of the pipeline, and `server`
serves the REST contract of department-systems.md §1, quirks and faults included.
"""
