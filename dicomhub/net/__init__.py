"""The DICOM network face: listener (SCP) and outgoing requests (SCU) over pynetdicom.

Every association, in either role, runs on the event-driven reactors of ``reactor``.
"""

from . import reactor

reactor.install()
