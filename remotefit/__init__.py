"""remotefit: ``model.fit()`` as a service. The client needs neither TensorFlow nor a server."""

from remotefit.client import Client, History
from remotefit.errors import JobFailed, RemoteFitError
from remotefit.resources import Job

__all__ = ["Client", "History", "Job", "JobFailed", "RemoteFitError"]
