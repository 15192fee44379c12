"""Streaming multipart/related bodies (RFC 2387, RFC 2046 §5.1) for STOW-RS and WADO-RS (no Django imports).

PS3.18 §8.6.1.2 carries DICOM instances, frames, bulk data and rendered images as the parts of a
``multipart/related`` message. The reader here never holds a whole body: it reads the input in
chunks and hands each part's content on as a stream of chunks, keeping back only the few bytes that
could be the start of the next boundary. The writer builds the framing around content the caller
streams itself.

Body framing (RFC 2046 §5.1.1)::

    --boundary CRLF headers CRLF CRLF content CRLF --boundary CRLF ... content CRLF --boundary-- CRLF
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

DEFAULT_READ_SIZE: Final = 1024 * 1024
MAX_HEADER_BYTES: Final = 16 * 1024
MAX_BOUNDARY_LENGTH: Final = 70  # RFC 2046 §5.1.1


class MultipartError(ValueError):
    """The body is not a well-formed multipart message; `code` names the problem for an API answer."""

    def __init__(self, detail: str, *, code: str = "invalid_multipart") -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class TruncatedPart(MultipartError):
    """The body ended inside a part, before its closing boundary."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="truncated_multipart")


# --- media types ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaType:
    """A parsed media type (RFC 9110 §8.3.1): lowercase type/subtype, parameters by lowercase name."""

    type: str
    subtype: str
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def essence(self) -> str:
        return f"{self.type}/{self.subtype}"

    def parameter(self, name: str, default: str | None = None) -> str | None:
        return self.parameters.get(name.lower(), default)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for character in text:
        if escaped:
            current.append(character)
            escaped = False
        elif character == "\\" and quoted:
            current.append(character)
            escaped = True
        elif character == '"':
            current.append(character)
            quoted = not quoted
        elif character == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        return inner.replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse_media_type(text: str) -> MediaType:
    """Parse ``type/subtype; name=value; ...``; raises ValueError when there is no type/subtype."""
    pieces = _split_outside_quotes(text, ";")
    essence = pieces[0].strip().lower()
    if essence.count("/") != 1:
        raise ValueError(f"not a media type: {text!r}")
    main_type, subtype = (part.strip() for part in essence.split("/"))
    if not main_type or not subtype:
        raise ValueError(f"not a media type: {text!r}")
    parameters: dict[str, str] = {}
    for piece in pieces[1:]:
        if not piece.strip():
            continue
        name, separator, value = piece.partition("=")
        if not separator:
            continue
        parameters[name.strip().lower()] = _unquote(value)
    return MediaType(main_type, subtype, parameters)


def split_header_list(text: str) -> list[str]:
    """A comma-separated header value (Accept), keeping commas inside quoted strings."""
    return [item for item in (part.strip() for part in _split_outside_quotes(text, ",")) if item]


# --- reading -------------------------------------------------------------------------------------------


@dataclass
class BodyPart:
    """One part of a multipart body; `chunks()` streams its content and may be called once."""

    headers: dict[str, str]
    _chunks: Iterator[bytes]
    _consumed: bool = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def chunks(self) -> Iterator[bytes]:
        if self._consumed:
            raise RuntimeError("the content of a part can be read only once")
        self._consumed = True
        return self._chunks

    def drain(self) -> int:
        """Skip what is left of the content; returns how many bytes were skipped."""
        skipped = 0
        source = self._chunks if self._consumed else self.chunks()
        for chunk in source:
            skipped += len(chunk)
        return skipped


class MultipartReader:
    """Iterate the parts of a multipart body read through `read(size)` (e.g. a WSGI input stream).

    Each part must be consumed (or drained) before the next is requested; the iterator drains
    an unconsumed part itself. Raises MultipartError for a body without the boundary, a header
    block that never ends, and TruncatedPart when the input ends before the closing boundary.
    """

    def __init__(
        self,
        read: Callable[[int], bytes],
        boundary: str | bytes,
        *,
        read_size: int = DEFAULT_READ_SIZE,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        boundary_bytes = boundary.encode("latin-1") if isinstance(boundary, str) else boundary
        if not boundary_bytes or len(boundary_bytes) > MAX_BOUNDARY_LENGTH:
            raise MultipartError("the multipart boundary must be 1 to 70 characters", code="invalid_boundary")
        self._read = read
        self._read_size = read_size
        self._max_header_bytes = max_header_bytes
        self._dash_boundary = b"--" + boundary_bytes
        self._delimiter = b"\r\n--" + boundary_bytes
        self._buffer = b""
        self._eof = False

    def _fill(self) -> bool:
        """Read more input into the buffer; False at the end of the input."""
        if self._eof:
            return False
        data = self._read(self._read_size)
        if not data:
            self._eof = True
            return False
        self._buffer = self._buffer + data if self._buffer else bytes(data)
        return True

    def _skip_preamble(self) -> None:
        """Find the first boundary: at the very start or at the start of a line (RFC 2046 §5.1.1)."""
        while True:
            if self._buffer.startswith(self._dash_boundary):
                self._buffer = self._buffer[len(self._dash_boundary):]
                return
            index = self._buffer.find(self._delimiter)
            if index >= 0:
                self._buffer = self._buffer[index + len(self._delimiter):]
                return
            # Keep only what could still be the start of a delimiter.
            keep = len(self._delimiter) - 1
            if len(self._buffer) > keep:
                self._buffer = self._buffer[-keep:]
            if not self._fill():
                raise MultipartError(
                    "the body does not contain the boundary named in the Content-Type header",
                    code="boundary_not_found",
                )

    def _after_delimiter(self) -> bool:
        """Consume what follows a boundary: True if a part follows, False after the close delimiter."""
        while len(self._buffer) < 2 and self._fill():
            pass
        if self._buffer.startswith(b"--"):
            self._buffer = b""  # the epilogue is ignored (RFC 2046 §5.1.1)
            self._eof = True
            return False
        if len(self._buffer) < 2:
            raise TruncatedPart("the body ends right after a boundary")
        return True

    def _read_headers(self) -> dict[str, str]:
        while True:
            # The buffer starts with the (optionally padded) CRLF that ends the boundary line, so
            # an empty header block is found at once as the CRLF CRLF at position 0.
            stripped = self._buffer.lstrip(b" \t")
            end = stripped.find(b"\r\n\r\n")
            if end >= 0:
                if not stripped.startswith(b"\r\n"):
                    raise MultipartError("a boundary line must end with CRLF")
                block = stripped[2:end]
                self._buffer = stripped[end + 4:]
                return _parse_header_block(block)
            if len(self._buffer) > self._max_header_bytes:
                raise MultipartError(f"part headers longer than {self._max_header_bytes} bytes")
            if not self._fill():
                raise TruncatedPart("the body ends inside a part's headers")

    def _content(self) -> Iterator[bytes]:
        delimiter = self._delimiter
        keep = len(delimiter) - 1
        while True:
            index = self._buffer.find(delimiter)
            if index >= 0:
                if index:
                    yield self._buffer[:index]
                self._buffer = self._buffer[index + len(delimiter):]
                return
            if len(self._buffer) > keep:
                safe = len(self._buffer) - keep
                yield self._buffer[:safe]
                self._buffer = self._buffer[safe:]
            if not self._fill():
                raise TruncatedPart("the body ends inside a part, before its closing boundary")

    def __iter__(self) -> Iterator[BodyPart]:
        if not self._buffer:
            self._fill()
        self._skip_preamble()
        while self._after_delimiter():
            headers = self._read_headers()
            part = BodyPart(headers=headers, _chunks=self._content())
            yield part
            if not part._consumed:
                part.drain()
            else:
                # Finish a part the caller stopped reading half way.
                for _ in part._chunks:
                    pass


def _parse_header_block(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    text = block.decode("latin-1")
    for line in text.split("\r\n"):
        if not line.strip():
            continue
        if line[0] in " \t" and headers:  # obsolete line folding: continue the previous header
            last = next(reversed(headers))
            headers[last] += " " + line.strip()
            continue
        name, separator, value = line.partition(":")
        if not separator or not name.strip():
            raise MultipartError(f"malformed part header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


# --- writing -------------------------------------------------------------------------------------------


def new_boundary() -> str:
    """A boundary that cannot occur in content by chance (128 random bits, hex: no quoting needed)."""
    return secrets.token_hex(16)


def part_head(boundary: str, content_type: str, *, content_length: int | None = None,
              extra_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """The delimiter and headers that open a part; the caller writes the content, then `part_tail()`."""
    lines = [f"--{boundary}", f"Content-Type: {content_type}"]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    lines.extend(f"{name}: {value}" for name, value in extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


PART_TAIL: Final = b"\r\n"


def close_delimiter(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("latin-1")


def multipart_content_type(boundary: str, part_type: str, **parameters: str) -> str:
    """``multipart/related; type="…"; boundary=…`` (PS3.18 §8.7.3.1), with extra parameters in order."""
    extra = "".join(f"; {name.replace('_', '-')}={value}" for name, value in parameters.items())
    return f'multipart/related; type="{part_type}"{extra}; boundary={boundary}'
