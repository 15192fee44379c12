"""Where the embedded default (no PostgreSQL, Redis or S3 configured) keeps its state.

Settings and the launcher (`python -m launcher`) both read these paths, so a `manage.py`
command run beside a running launcher finds the same database socket and broker socket.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("IMAGING_CLOUD_DATA_DIR", BASE_DIR / ".data")).resolve()
POSTGRES_DIR = DATA_DIR / "postgres"
REDIS_DIR = DATA_DIR / "redis"
REDIS_SOCKET = REDIS_DIR / "redis.sock"
OBJECTS_DIR = DATA_DIR / "objects"
BEAT_SCHEDULE_FILE = DATA_DIR / "celerybeat-schedule"
DATABASE_NAME = "imaging_cloud"
# pgserver's initdb creates this superuser, trusted on the unix socket.
DATABASE_USER = "postgres"


def postgres_socket_dir() -> Path:
    """The folder holding PostgreSQL's unix socket.

    pgserver puts the socket in the data folder, unless that path is too long for a unix socket
    (about 100 bytes); then it picks a folder under /tmp. The running server writes the folder it
    chose on line 5 of postmaster.pid, so that line is the truth while the server runs.
    """
    try:
        lines = (POSTGRES_DIR / "postmaster.pid").read_text().splitlines()
    except OSError:
        return POSTGRES_DIR
    if len(lines) >= 5 and lines[4].strip():
        return Path(lines[4].strip())
    return POSTGRES_DIR


def database_url() -> str:
    """The embedded PostgreSQL listens only on a unix socket (no TCP port)."""
    return f"postgresql://{DATABASE_USER}@/{DATABASE_NAME}?host={postgres_socket_dir()}"


def broker_url() -> str:
    return f"redis+socket://{REDIS_SOCKET}"


SECRET_KEY_FILE = DATA_DIR / "secret_key"


def persistent_secret_key() -> str:
    """The embedded run's signing key: made at random on first use and kept in the data folder.

    Used only when SECRET_KEY is not set. Every process of one data folder (web, workers, beat,
    manage.py) reads the same file; the first one to need it creates it, atomically, readable by
    its owner only, so two processes starting together still agree on one key."""
    import secrets

    try:
        return SECRET_KEY_FILE.read_text().strip()
    except FileNotFoundError:
        pass
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    candidate = DATA_DIR / f".secret_key.{os.getpid()}"
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(64))
    try:
        os.link(candidate, SECRET_KEY_FILE)  # fails if another process made the key first
    except FileExistsError:
        pass
    finally:
        candidate.unlink(missing_ok=True)
    return SECRET_KEY_FILE.read_text().strip()
