"""Safe reading of uploaded zip archives (no Django imports).

Refuses what a hostile or broken archive can do to a server: member names that escape the
extraction root (absolute paths, '..', drive letters, backslashes), symlinks, encrypted members,
too many members, too much expanded data in total or per member, suspicious compression ratios
(bombs), and nested archives deeper than allowed. Sizes are enforced on the bytes actually
inflated, not on the sizes the archive declares, so a lying header cannot get past the limits.
"""

from __future__ import annotations

import io
import posixpath
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

READ_CHUNK = 1024 * 1024
# Members up to this size stay in memory; larger ones spill to a temporary file.
SPOOL_IN_MEMORY_BYTES = 32 * 1024 * 1024


class UnsafeArchive(ValueError):
    """The archive as a whole is refused (a bomb, too many members, not a zip)."""

    def __init__(self, reason: str, code: str = "unsafe_archive") -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class ZipLimits:
    max_members: int = 20_000
    max_total_bytes: int = 20 * 1024**3
    max_member_bytes: int = 2 * 1024**3
    max_compression_ratio: int = 200
    max_nesting_depth: int = 1
    # Small members may compress extremely well (blank images); the ratio only matters for big ones.
    ratio_check_from_bytes: int = 8 * 1024 * 1024


@dataclass(frozen=True)
class ZipMember:
    """One regular file inside the archive, or the reason it was skipped."""

    name: str
    size: int
    refused_reason: str | None = None
    refused_code: str | None = None


def safe_member_name(name: str) -> str | None:
    """The normalised relative name, or None if the name could escape the extraction root."""
    if not name or "\x00" in name or "\\" in name:
        return None
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    normalised = posixpath.normpath(name)
    if normalised.startswith("..") or normalised in {".", ""} or "/../" in f"/{normalised}/":
        return None
    return normalised


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def is_zip(stream: BinaryIO) -> bool:
    position = stream.tell()
    try:
        return zipfile.is_zipfile(stream)
    finally:
        stream.seek(position)


def _ratio_exceeded(expanded: int, compressed: int, limits: ZipLimits) -> bool:
    return expanded >= limits.ratio_check_from_bytes and expanded / max(compressed, 1) > limits.max_compression_ratio


class _LimitExceeded(Exception):
    pass


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> BinaryIO:
    """Inflate a member into a spooled file, stopping as soon as the real output passes `limit` bytes."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 - handed to the caller
    try:
        with archive.open(info) as member:
            while chunk := member.read(READ_CHUNK):
                spool.write(chunk)
                if spool.tell() > limit:
                    raise _LimitExceeded
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool  # type: ignore[return-value]


def iter_zip_members(
    stream: BinaryIO, *, limits: ZipLimits = ZipLimits(), depth: int = 0, prefix: str = ""
) -> Iterator[tuple[ZipMember, BinaryIO | None]]:
    """Yield (member, content) for each regular file; content is None when the member is refused.

    The content is a seekable file positioned at 0, valid until the next member is requested.

    Nested zips are opened up to `limits.max_nesting_depth` levels; their members are named
    `outer.zip/inner.dcm`. Raises UnsafeArchive when the archive as a whole must be refused.
    """
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError) as error:
        raise UnsafeArchive(f"Not a readable zip archive: {error}", code="not_a_zip") from error
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if len(infos) > limits.max_members:
            raise UnsafeArchive(f"The archive holds {len(infos)} files; at most {limits.max_members} are accepted.", code="too_many_members")
        inflated_total = 0
        for info in infos:
            display = prefix + info.filename
            name = safe_member_name(info.filename)
            if name is None:
                yield ZipMember(display, 0, "Member name escapes the archive root.", "path_traversal"), None
                continue
            display = prefix + name
            if _is_symlink(info):
                yield ZipMember(display, 0, "Symbolic links are not accepted.", "symlink"), None
                continue
            if info.flag_bits & 0x1:
                yield ZipMember(display, 0, "Encrypted members are not accepted.", "encrypted"), None
                continue
            if _ratio_exceeded(info.file_size, info.compress_size, limits):
                raise UnsafeArchive(f"{display} expands more than {limits.max_compression_ratio}x: refused as a zip bomb.", code="zip_bomb")
            member_limit = min(limits.max_member_bytes, limits.max_total_bytes - inflated_total)
            try:
                data = _inflate(archive, info, member_limit)
            except _LimitExceeded as error:
                raise UnsafeArchive(f"{display} expands past the size limit: refused as a zip bomb.", code="zip_bomb") from error
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
                yield ZipMember(display, 0, f"Member cannot be read: {error}", "corrupt_member"), None
                continue
            with data:
                size = data.seek(0, io.SEEK_END)
                data.seek(0)
                inflated_total += size
                if _ratio_exceeded(size, info.compress_size, limits):
                    raise UnsafeArchive(f"{display} expands more than {limits.max_compression_ratio}x: refused as a zip bomb.", code="zip_bomb")
                if not is_zip(data):
                    yield ZipMember(display, size), data
                    continue
                if depth >= limits.max_nesting_depth:
                    yield ZipMember(display, size, "Nested archives deeper than allowed are not opened.", "nested_too_deep"), None
                    continue
                nested_limits = ZipLimits(
                    max_members=limits.max_members, max_total_bytes=limits.max_total_bytes - inflated_total,
                    max_member_bytes=limits.max_member_bytes, max_compression_ratio=limits.max_compression_ratio,
                    max_nesting_depth=limits.max_nesting_depth, ratio_check_from_bytes=limits.ratio_check_from_bytes,
                )
                yield from iter_zip_members(data, limits=nested_limits, depth=depth + 1, prefix=display + "/")
