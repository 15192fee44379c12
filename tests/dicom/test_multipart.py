"""multipart/related bodies are read as streams (RFC 2046 §5.1) whatever the chunking, and written back."""

import io

import pytest

from apps.dicom.multipart import (
    PART_TAIL,
    MultipartError,
    MultipartReader,
    TruncatedPart,
    close_delimiter,
    multipart_content_type,
    parse_media_type,
    part_head,
)


def body(parts, boundary="b0undary", preamble=b"", epilogue=b""):
    pieces = [preamble]
    for headers, content in parts:
        pieces.append(f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode() + epilogue)
    return b"".join(pieces)


def read_all(data, boundary="b0undary", read_size=7):
    stream = io.BytesIO(data)
    return [(part.headers, b"".join(part.chunks())) for part in MultipartReader(stream.read, boundary, read_size=read_size)]


@pytest.mark.parametrize("read_size", [1, 3, 7, 64, 1 << 20])
def test_parts_are_read_whole_whatever_the_read_size(read_size):
    contents = [b"\r\n--b0undar not quite", b"", bytes(range(256)) * 10]
    data = body([("Content-Type: application/dicom", content) for content in contents])
    parts = read_all(data, read_size=read_size)
    assert [content for _, content in parts] == contents
    assert all(headers == {"content-type": "application/dicom"} for headers, _ in parts)


def test_a_preamble_and_an_epilogue_are_ignored():
    data = body([("Content-Type: a/b", b"x")], preamble=b"ignore me\r\n", epilogue=b"and me")
    assert read_all(data) == [({"content-type": "a/b"}, b"x")]


def test_a_part_without_headers_has_empty_headers():
    data = b"--b0undary\r\n\r\npayload\r\n--b0undary--"
    assert read_all(data) == [({}, b"payload")]


def test_a_body_without_the_boundary_is_refused():
    with pytest.raises(MultipartError) as error:
        read_all(body([("Content-Type: a/b", b"x")], boundary="other"))
    assert error.value.code == "boundary_not_found"


def test_a_body_cut_inside_a_part_raises_truncated():
    data = body([("Content-Type: a/b", b"complete"), ("Content-Type: a/b", b"cut here")])
    truncated = data[: data.index(b"cut here") + 3]
    reader = MultipartReader(io.BytesIO(truncated).read, "b0undary", read_size=5)
    parts = iter(reader)
    first = next(parts)
    assert b"".join(first.chunks()) == b"complete"
    second = next(parts)
    with pytest.raises(TruncatedPart):
        b"".join(second.chunks())


def test_an_unread_part_is_skipped():
    data = body([("Content-Type: a/b", b"skip me"), ("Content-Type: a/c", b"read me")])
    reader = MultipartReader(io.BytesIO(data).read, "b0undary")
    parts = list(reader)  # never reading the contents
    assert [part.content_type for part in parts] == ["a/b", "a/c"]


def test_media_types_parse_quoted_parameters():
    parsed = parse_media_type('Multipart/Related; type="application/dicom"; boundary="a;b"; transfer-syntax=*')
    assert parsed.essence == "multipart/related"
    assert parsed.parameters == {"type": "application/dicom", "boundary": "a;b", "transfer-syntax": "*"}


def test_written_parts_read_back():
    boundary = "0123abcd"
    data = (
        part_head(boundary, "application/dicom", content_length=3) + b"abc" + PART_TAIL
        + part_head(boundary, "application/dicom") + b"de" + PART_TAIL + close_delimiter(boundary)
    )
    assert [content for _, content in read_all(data, boundary=boundary)] == [b"abc", b"de"]
    assert multipart_content_type(boundary, "application/dicom") == (
        'multipart/related; type="application/dicom"; boundary=0123abcd'
    )
