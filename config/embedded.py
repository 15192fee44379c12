"""Where the embedded default (no PostgreSQL, Redis or S3 configured) keeps its state.

Settings and the launcher both read these paths, so a `manage.py` command run beside a running
launcher finds the same database socket and broker socket.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("IMAGING_CLOUD_DATA_DIR", BASE_DIR / ".data")).resolve()
POSTGRES_DIR = DATA_DIR / "postgres"
REDIS_DIR = DATA_DIR / "redis"
REDIS_SOCKET = REDIS_DIR / "redis.sock"
OBJECTS_DIR = DATA_DIR / "objects"
DATABASE_NAME = "imaging_cloud"


def database_url() -> str:
    """The embedded PostgreSQL listens only on a unix socket inside its data folder."""
    return f"postgresql://postgres@/{DATABASE_NAME}?host={POSTGRES_DIR}"


def broker_url() -> str:
    return f"redis+socket://{REDIS_SOCKET}"
