"""Hold one incoming file while it is checked: in memory up to a limit, then in a temporary file.

Memory stays bounded by the limit whatever the size of the file or of the request. (The SHA-256 of
the content is computed once, by the storage layer as it writes the object.)
"""

from __future__ import annotations

import io
import mmap
import tempfile
from typing import Any, BinaryIO


class PartTooLarge(Exception):
    pass


class Spool:
    def __init__(self, *, memory_limit: int, size_limit: int) -> None:
        self._memory_limit = memory_limit
        self._size_limit = size_limit
        self._chunks: list[bytes] = []
        self._file: BinaryIO | None = None
        self._map: mmap.mmap | None = None
        self._data: bytes | None = None
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self._size_limit:
            raise PartTooLarge(f"more than {self._size_limit} bytes")
        self.size += len(chunk)
        if self._file is not None:
            self._file.write(chunk)
        elif self.size > self._memory_limit:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
            for held in self._chunks:
                self._file.write(held)
            self._file.write(chunk)
            self._chunks = []
        else:
            self._chunks.append(chunk)

    def prepend(self, prefix: bytes) -> None:
        """Put `prefix` before the content received so far (used rarely: a missing preamble)."""
        if self._file is None:
            self._chunks = [prefix, *([self._data] if self._data is not None else []), *self._chunks]
            self._data = None
        else:
            if self._map is not None:
                self._map.close()
                self._map = None
            replacement = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
            replacement.write(prefix)
            self._file.flush()
            self._file.seek(0)
            while chunk := self._file.read(1024 * 1024):
                replacement.write(chunk)
            self._file.close()
            self._file = replacement
        self.size += len(prefix)

    def buffer(self) -> Any:
        """The whole content as bytes (in memory) or a read-only mmap (on disk)."""
        if self._file is None:
            if self._data is None:
                self._data = b"".join(self._chunks)
                self._chunks = []
            return self._data
        if self._map is None:
            self._file.flush()
            if self.size == 0:
                return b""
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        return self._map

    def stream(self) -> BinaryIO:
        """A seekable file over the content, at its start."""
        if self._file is None:
            return io.BytesIO(self.buffer())
        self._file.flush()
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None
        self._chunks = []
        self._data = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
