"""The data side: uploaded dataset files and their readers, array references, the store.

Imports only the foundations at ``models/``; knows nothing of Keras or of jobs.
"""
