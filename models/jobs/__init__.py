"""The job lifecycle: the record and its transitions, validation before queueing, the worker's
runner and monitor, status reads, the sweeper and what wakes event streams.

Uses ``models.keras``, ``models.data`` and the foundations; nothing imports it but ``api/`` and
``worker/``.
"""
