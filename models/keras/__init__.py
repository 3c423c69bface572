"""The Keras side: model JSON of any dialect → a safe, built, compiled model; training; weights.

Imports ``models.data`` and the foundations at ``models/``; never ``models.jobs``.
"""
