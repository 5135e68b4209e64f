"""The warehouse's schema revisions, oldest first: `<revision>_<slug>.py`, each naming its `down_revision`."""
