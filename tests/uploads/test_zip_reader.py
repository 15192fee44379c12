"""Zip archives from browsers: ordinary ones are read, hostile ones are refused with a reason."""

import io
import stat
import zipfile

import pytest

from apps.uploads.zip_reader import UnsafeArchive, ZipLimits, iter_zip_members, safe_member_name


def make_zip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    buffer.seek(0)
    return buffer


def read_all(stream: io.BytesIO, **kwargs):
    return [(member, content.read() if content else None) for member, content in iter_zip_members(stream, **kwargs)]


def test_regular_members_are_read_with_their_bytes():
    results = read_all(make_zip({"study/a.dcm": b"A" * 10, "study/b.dcm": b"B" * 20}))
    assert [(m.name, m.size, data) for m, data in results] == [
        ("study/a.dcm", 10, b"A" * 10),
        ("study/b.dcm", 20, b"B" * 20),
    ]


@pytest.mark.parametrize(
    "name", ["../evil.dcm", "a/../../evil.dcm", "/etc/passwd", "C:/windows/x.dcm", "a\\..\\b.dcm"]
)
def test_member_names_that_escape_the_root_are_refused(name):
    results = read_all(make_zip({name: b"x", "fine.dcm": b"y"}))
    refused = [m for m, data in results if data is None]
    assert len(refused) == 1 and refused[0].refused_code == "path_traversal"
    assert [m.name for m, data in results if data is not None] == ["fine.dcm"]


def test_safe_member_name_normalises_harmless_dots():
    assert safe_member_name("a/./b.dcm") == "a/b.dcm"
    assert safe_member_name("a/b/../c.dcm") == "a/c.dcm"
    assert safe_member_name("..") is None


def test_symlink_members_are_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("link.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    buffer.seek(0)
    [(member, data)] = read_all(buffer)
    assert data is None and member.refused_code == "symlink"


def test_a_zip_bomb_is_refused_by_its_real_expansion():
    bomb = make_zip({"zeros.dcm": b"\0" * (64 * 1024 * 1024)})
    with pytest.raises(UnsafeArchive) as refused:
        read_all(bomb)
    assert refused.value.code == "zip_bomb"


def test_a_lying_header_cannot_pass_the_size_limit():
    # The total limit is enforced on inflated bytes, whatever the archive declares.
    archive = make_zip({"a.dcm": bytes(range(256)) * 4096, "b.dcm": bytes(range(256)) * 4096})
    with pytest.raises(UnsafeArchive) as refused:
        read_all(archive, limits=ZipLimits(max_total_bytes=1_500_000))
    assert refused.value.code == "zip_bomb"


def test_nested_zip_is_opened_one_level_and_deeper_nesting_is_refused():
    innermost = make_zip({"deep.dcm": b"deep"}).getvalue()
    inner = make_zip({"inner.dcm": b"inner", "deeper.zip": innermost}).getvalue()
    results = read_all(make_zip({"outer.dcm": b"outer", "inner.zip": inner}))
    names = {m.name: (data, m.refused_code) for m, data in results}
    assert names["outer.dcm"] == (b"outer", None)
    assert names["inner.zip/inner.dcm"] == (b"inner", None)
    assert names["inner.zip/deeper.zip"] == (None, "nested_too_deep")


def test_too_many_members_refuses_the_archive():
    with pytest.raises(UnsafeArchive) as refused:
        read_all(make_zip({f"{i}.dcm": b"x" for i in range(11)}), limits=ZipLimits(max_members=10))
    assert refused.value.code == "too_many_members"


def test_not_a_zip_is_refused():
    with pytest.raises(UnsafeArchive) as refused:
        read_all(io.BytesIO(b"DICM but not a zip"))
    assert refused.value.code == "not_a_zip"


def test_truncated_zip_is_refused():
    data = make_zip({"a.dcm": b"A" * 5000}).getvalue()
    with pytest.raises(UnsafeArchive):
        read_all(io.BytesIO(data[: len(data) // 2]))
