"""kombu's SQLAlchemy transport, fit for the embedded default's SQLite broker.

The stock transport hands every transport option to ``create_engine``, so the polling interval
(how soon a worker sees a new job) cannot be set; this one keeps transport options for the
transport and gives SQLite a busy timeout so the API and the worker can share the file.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import sqlalchemy
from sqlalchemy import create_engine, event

from models.db import sqlite_shared_access


class Channel(sqlalchemy.Channel):
    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        engine = create_engine(conninfo.hostname, connect_args={"timeout": 30})
        event.listen(engine, "connect", sqlite_shared_access)
        return engine


class Transport(sqlalchemy.Transport):
    Channel = Channel
