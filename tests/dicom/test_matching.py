"""QIDO-RS query parameters (PS3.18 §8.3.4) become structured matching keys (PS3.4 §C.2.2.2)."""

from datetime import date, datetime, time

import pytest

from apps.dicom.matching import (
    MatchKind,
    QueryError,
    fuzzy_query_keys,
    normalise_person_name,
    parse_query,
    person_name_keys,
    soundex,
    wildcard_to_like,
)


def parse(*pairs, max_limit=1000):
    return parse_query(list(pairs), max_limit=max_limit)


def test_a_keyword_or_a_tag_names_an_attribute():
    assert parse(("PatientID", "P1")).criteria[0].attribute.keyword == "PatientID"
    assert parse(("00100020", "P1")).criteria[0].attribute.keyword == "PatientID"


def test_single_values_lists_and_universal_matching():
    query = parse(("PatientID", "P1"), ("StudyInstanceUID", "1.2.3,1.2.4"), ("AccessionNumber", ""),
                  ("ModalitiesInStudy", "CT\\MR"))
    kinds = {criterion.attribute.keyword: (criterion.kind, criterion.values) for criterion in query.criteria}
    assert kinds["PatientID"] == (MatchKind.SINGLE, ("P1",))
    assert kinds["StudyInstanceUID"] == (MatchKind.LIST, ("1.2.3", "1.2.4"))
    assert kinds["AccessionNumber"] == (MatchKind.UNIVERSAL, ())
    assert kinds["ModalitiesInStudy"] == (MatchKind.LIST, ("CT", "MR"))


def test_repeated_uid_keys_are_a_list():
    query = parse(("SeriesInstanceUID", "1.2.3"), ("SeriesInstanceUID", "1.2.4"))
    assert query.criteria[0].values == ("1.2.3", "1.2.4")


def test_wildcards_translate_to_like_patterns():
    query = parse(("PatientName", "DOE*"), ("StudyDescription", "C?_50%"))
    assert [criterion.kind for criterion in query.criteria] == [MatchKind.WILDCARD, MatchKind.WILDCARD]
    assert wildcard_to_like("C?_50%*") == "C_\\_50\\%%"


@pytest.mark.parametrize(
    ("value", "lower", "upper"),
    [
        ("20220101-20231231", date(2022, 1, 1), date(2023, 12, 31)),
        ("-20231231", None, date(2023, 12, 31)),
        ("20220101-", date(2022, 1, 1), None),
        ("20220101", date(2022, 1, 1), date(2022, 1, 1)),
    ],
)
def test_date_ranges(value, lower, upper):
    criterion = parse(("StudyDate", value)).criteria[0]
    assert (criterion.kind, criterion.lower, criterion.upper) == (MatchKind.RANGE, lower, upper)


def test_partial_times_cover_their_whole_unit():
    criterion = parse(("StudyTime", "10-1130")).criteria[0]
    assert (criterion.lower, criterion.upper) == (time(10), time(11, 30, 59, 999999))


def test_datetime_ranges():
    criterion = parse(("AcquisitionDateTime", "2022-202301")).criteria[0]
    assert criterion.lower == datetime(2022, 1, 1)
    assert criterion.upper == datetime(2023, 1, 31, 23, 59, 59, 999999)


@pytest.mark.parametrize(
    "pairs",
    [
        [("PatientNam", "x")],
        [("StudyDate", "2022-01-01")],
        [("StudyDate", "20221301")],
        [("StudyInstanceUID", "1.2.abc")],
        [("SeriesNumber", "three")],
        [("limit", "-1")],
        [("fuzzymatching", "maybe")],
        [("includefield", "NotAnAttribute")],
    ],
)
def test_malformed_parameters_are_refused(pairs):
    with pytest.raises(QueryError):
        parse(*pairs)


def test_paging_fuzziness_and_includefields():
    query = parse(("limit", "5000"), ("offset", "20"), ("fuzzymatching", "true"), ("includefield", "00081030,Modality"),
                  ("includefield", "all"), ("PatientName", "jon"), max_limit=1000)
    assert (query.limit, query.offset, query.fuzzy_matching, query.include_all) == (1000, 20, True, True)
    assert [field.keyword for field in query.include_fields] == ["StudyDescription", "Modality"]
    assert query.criteria[0].kind == MatchKind.FUZZY


def test_sequence_paths_are_reported_unsupported():
    assert parse(("RequestAttributesSequence.ScheduledProcedureStepID", "1")).unsupported == (
        "RequestAttributesSequence.ScheduledProcedureStepID",
    )


def test_person_names_are_normalised_for_comparison():
    assert normalise_person_name("Müller^Jörg^^^") == "MULLER^JORG"
    assert normalise_person_name("Yamada^Tarou=山田^太郎") == "YAMADA^TAROU"


def test_fuzzy_keys_ignore_spelling_and_order():
    assert soundex("ROBERT") == soundex("RUPERT") == "R163"
    assert set(fuzzy_query_keys("jon smyth")) <= set(person_name_keys("Smith^John"))


@pytest.mark.parametrize(
    "pairs",
    [
        [("PatientName", "DOE\x00")],
        [("PatientID", "\x00")],
        [("StudyDescription", "CT*\x00*")],
        [("Patient\x00Name", "DOE")],
        [("includefield", "PatientAge\x00")],
    ],
)
def test_a_nul_character_in_a_parameter_name_or_value_is_refused(pairs):
    with pytest.raises(QueryError, match="NUL"):
        parse(*pairs)


@pytest.mark.parametrize(
    ("key", "value"),
    [("StudyDate", "20200230"), ("StudyDate", "20201345"), ("StudyDate", "20200101-20200230"),
     ("StudyTime", "256000"), ("AcquisitionDateTime", "20200230")],
)
def test_impossible_dates_and_times_are_refused_naming_the_key(key, value):
    with pytest.raises(QueryError, match=key):
        parse((key, value))
