"""load_valuesets: identity by OID/version/expansion, bad files, and per-version selection."""

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command

from gaps.models import ValueSet
from gaps.valuesets import select_value_sets
from tests.gaps.conftest import ECQM, needs_shared

pytestmark = pytest.mark.django_db
OID = "9.9.9.1"


def value_set(
    version="1", identifier="exp-1", timestamp="2024-05-02T00:00:00Z", codes=("a", "b"), total=None
):
    expansion = {
        "identifier": identifier,
        "timestamp": timestamp,
        "contains": [{"system": "http://example.org/cs", "code": c} for c in codes],
    }
    if total is not None:
        expansion["total"] = total
    return {
        "resourceType": "ValueSet",
        "url": f"http://cts.nlm.nih.gov/fhir/ValueSet/{OID}",
        "version": version,
        "title": "Example",
        "expansion": expansion,
    }


def load(tmp_path, *documents, partial=False):
    for index, document in enumerate(documents):
        (tmp_path / f"vs{index}.json").write_text(
            document if isinstance(document, str) else json.dumps(document)
        )
    out, err = io.StringIO(), io.StringIO()
    call_command("load_valuesets", str(tmp_path), partial=partial, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_loading_twice_changes_nothing(tmp_path):
    out, _ = load(tmp_path, value_set())
    assert "loaded 1, unchanged 0, codes 2" in out
    out, _ = load(tmp_path, value_set())
    assert "loaded 0, unchanged 1" in out
    assert ValueSet.objects.get(oid=OID).codes.count() == 2


def test_hcpcs_uris_are_normalised_to_one_system(tmp_path):
    document = value_set()
    document["expansion"]["contains"] = [
        {"system": "http://www.nlm.nih.gov/research/umls/hcpcs", "code": "G0001"}
    ]
    load(tmp_path, document)
    assert ValueSet.objects.get(oid=OID).codes.get().system == (
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
    )


def test_a_file_without_expansion_is_refused_by_name(tmp_path):
    document = value_set()
    del document["expansion"]
    with pytest.raises(CommandError, match="No value set loaded"):
        load(tmp_path, document, value_set(version="2"))
    assert not ValueSet.objects.filter(oid=OID).exists()


def test_partial_loads_the_good_files_and_names_the_bad_one(tmp_path):
    bad = value_set()
    del bad["expansion"]
    _, err = load(tmp_path, bad, value_set(version="2"), partial=True)
    assert "vs0.json: expansion: ValueSet 9.9.9.1 has no expansion.contains" in err
    assert list(ValueSet.objects.filter(oid=OID).values_list("version", flat=True)) == ["2"]


def test_malformed_json_is_named(tmp_path):
    with pytest.raises(CommandError):
        load(tmp_path, "{oops")


def test_each_version_picks_the_latest_complete_expansion_before_its_cutoff(tmp_path):
    load(
        tmp_path,
        value_set(identifier="2024", timestamp="2024-05-02T00:00:00Z"),
        value_set(identifier="2025", timestamp="2025-06-01T00:00:00Z", codes=("a", "b", "c")),
        value_set(identifier="2025-cut", timestamp="2025-07-01T00:00:00Z", codes=("a",), total=9),
    )
    by_id = {v.pk: v.expansion_identifier for v in ValueSet.objects.filter(oid=OID)}
    early = select_value_sets([OID, "0.0.0"], dt.date(2025, 3, 31))
    late = select_value_sets([OID], None)
    assert by_id[early.value_set_ids[OID]] == "2024"
    assert early.missing == ["0.0.0"]
    assert by_id[late.value_set_ids[OID]] == "2025"  # the truncated newer file is not used


@needs_shared
def test_the_mp2026_folder_loads_except_the_compose_only_payer_type(tmp_path):
    err = io.StringIO()
    call_command(
        "load_valuesets",
        str(ECQM / "valuesets" / "qicore-2025"),
        partial=True,
        stdout=io.StringIO(),
        stderr=err,
    )
    assert "2.16.840.1.114222.4.11.3591 has no expansion.contains" in err.getvalue()
    assert ValueSet.objects.filter(source_file__contains="qicore-2025").count() == 16


def test_the_starter_set_loads_and_never_shadows_a_vsac_expansion(tmp_path):
    from django.conf import settings

    from gaps.measures.oids import ANNUAL_WELLNESS

    starter = settings.BASE_DIR / "gaps" / "starter"
    call_command("load_valuesets", str(starter), stdout=io.StringIO())
    chosen = select_value_sets([ANNUAL_WELLNESS], None).value_set_ids[ANNUAL_WELLNESS]
    loaded = ValueSet.objects.filter(oid=ANNUAL_WELLNESS)
    if loaded.count() == 1:
        assert loaded.get().version == "carehub-starter-1"
    else:  # the session's VSAC files are loaded too: theirs is newer and wins
        assert ValueSet.objects.get(pk=chosen).version != "carehub-starter-1"
    assert (
        not ValueSet.objects.get(version="carehub-starter-1")
        .codes.filter(system="http://www.ama-assn.org/go/cpt")
        .exists()
    )
