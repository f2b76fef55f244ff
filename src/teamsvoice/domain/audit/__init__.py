"""The audit log (issue 13): who changed what, when, through which API family or console page.

Importing this package installs the recorder's SQLAlchemy hooks (recorder.py) for every session of the process."""

from teamsvoice.domain.audit import recorder as recorder  # noqa: F401  (installs the hooks)
