"""The standard presets: records in their format validate and release, their domains are the
standard's (checked against the standard's own files where ``../shared`` is present), and
``ptsynth init --preset`` maps an export's columns onto them by name."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import records  # noqa: E402
from standards import (  # noqa: E402
    ctdc_v2024_variables,
    htcds_fields,
    htcds_template_columns,
    pdf_text,
    pdftotext_available,
)

from ptsynth.config import ReleaseConfig  # noqa: E402
from ptsynth.ingest import read_records  # noqa: E402
from ptsynth.ingest.presets import PRESETS, match_columns, normalise, preset_path  # noqa: E402
from ptsynth.ingest.propose import init_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
HTCDS = REPO / "configs" / "htcds_2.toml"
V2024 = REPO / "configs" / "ctdc_synthetic_v2024.toml"
V2024_NAMES = [
    "yearOfRegistration", "gender", "ageBroad", "citizenship", "CountryOfExploitation",
    "traffickMonths", "meansDebtBondageEarnings", "meansThreats", "meansAbusePsyPhySex",
    "meansFalsePromises", "meansDrugsAlcohol", "meansDenyBasicNeeds", "meansExcessiveWorkHours",
    "meansWithholdDocs", "isForcedLabour", "isSexualExploit", "isOtherExploit",
    "typeOfLabourAgriculture", "typeOfLabourConstruction", "typeOfLabourDomesticWork",
    "typeOfLabourHospitality", "typeOfSexProstitution", "typeOfSexPornography",
    "recruiterRelationIntimatePartner", "recruiterRelationFriend", "recruiterRelationFamily",
    "recruiterRelationOther",
]  # fmt: skip


def _uncommented(path: Path, tmp_path: Path) -> Path:
    """The HTCDS preset with its optional (commented-out) column blocks switched on."""
    text = path.read_text(encoding="utf-8")
    blocks = re.sub(r"(?m)^# (\[\[columns\]\]|\[columns\.map\]|name = |kind = |values = |"
                    r"delimiter = |map = |missing = |sensitive = |description = |    |\])",
                    r"\1", text)
    out = tmp_path / "htcds_full.toml"
    out.write_text(blocks, encoding="utf-8")
    return out


def _fast(cfg_path: Path, tmp_path: Path) -> Path:
    """The preset with a lighter pgm fit (fewer rounds, 2-way), for test time only."""
    doc = cfg_path.read_text(encoding="utf-8")
    doc = doc.replace('synthesizer = "pgm"', 'synthesizer = "pgm"\n\n[release.pgm]\nrounds = 6\ndegree = 2\n'
                      'iters = 10\nfinal_iters = 60', 1)
    out = tmp_path / ("fast_" + cfg_path.name)
    out.write_text(doc, encoding="utf-8")
    return out


# -- the files --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["htcds", "ctdc-v2024", "ctdc-demo"])
def test_packaged_presets_equal_the_repository_copies(name):
    packaged = preset_path(name)
    repo_copy = REPO / "configs" / ("ctdc_demo.toml" if name == "ctdc-demo" else PRESETS[name][0])
    assert packaged.read_bytes() == repo_copy.read_bytes()
    cfg = ReleaseConfig.load(packaged)
    assert cfg.domains_confirmed and cfg.release.synthesizer == "pgm"


def test_ctdc_v2024_has_the_27_codebook_variables_in_order():
    cfg = ReleaseConfig.load(V2024)
    assert cfg.schema.names == V2024_NAMES
    assert cfg.dataset.missing_values == ("", "NULL")
    assert cfg.dataset.extra_columns == "error"
    for name in V2024_NAMES[6:]:
        col = cfg.schema.column(name)
        assert (col.kind, col.values, col.missing) == ("categorical", ("1",), "allow")
    year = cfg.schema.column("yearOfRegistration")
    assert year.values == tuple(str(y) for y in range(2002, 2023)) and year.missing == "forbid"
    assert cfg.schema.column("ageBroad").mapping["0\u20148"] == "0--8"


def test_htcds_optional_blocks_parse_when_uncommented(tmp_path):
    base = ReleaseConfig.load(HTCDS)
    full = ReleaseConfig.load(_uncommented(HTCDS, tmp_path))
    added = set(full.schema.names) - set(base.schema.names)
    assert added == {"vic_RecruitmentWebsitesAndApps", "vic_ExploitationWebsitesAndApps"}
    assert all(full.schema.column(c).kind == "set" for c in added)


# -- records in each preset's format validate and release ------------------------------------------
@pytest.mark.parametrize("path", [HTCDS, V2024], ids=["htcds", "ctdc-v2024"])
def test_generated_records_validate_and_release(path, tmp_path):
    import ptsynth

    cfg = ReleaseConfig.load(path)
    frame = records(cfg.schema, 1500, seed=2)
    if "NULL" in cfg.dataset.missing_values:  # the codebook's missing code, in some cells
        flags = [c for c in frame.columns if c.startswith("means")]
        frame.loc[frame.index[::7], flags] = frame.loc[frame.index[::7], flags].replace("", "NULL")
    data = tmp_path / "records.csv"
    frame.to_csv(data, index=False)
    table = read_records(data, cfg.schema)
    assert table.n_records == len(frame)
    rel = ptsynth.release(data, _fast(path, tmp_path), tmp_path / "bundle", seed=5,
                          evaluate_release=False, epsilon=2.0)
    assert len(rel.synthetic) > 0.5 * len(frame)
    # the bundle's synthetic file is valid against the preset's released schema
    again = read_records(tmp_path / "bundle" / "synthetic.csv", cfg.schema.released())
    assert again.n_records == len(rel.synthetic)


def test_htcds_export_with_labels_and_identifiers_maps_with_init_preset(tmp_path):
    """An export spelled with HTCDS labels / without prefixes, plus names and an id, maps onto
    the preset: identifiers are never declared, the id becomes the subject id."""
    cfg = ReleaseConfig.load(HTCDS)
    frame = records(cfg.schema, 300, seed=4)
    rename = {"prs_Gender": "Gender", "vic_TypeOfExploitation": "Type of Exploitation",
              "cas_Status": "CAS_STATUS", "vic_TraffickingStatusDecisionMakingOrg":
              "vic_TraffickinStatusDecisionMakingOrg"}
    frame = frame.rename(columns=rename).drop(columns=["cas_OutgoingReferralDate"])
    frame.insert(0, "RecordId", [f"R{i:04d}" for i in range(len(frame))])
    frame["prs_FirstName"] = [f"Name{i}" for i in range(len(frame))]
    frame["prs_MobilePhone"] = [f"+4470000{i:04d}" for i in range(len(frame))]
    data = tmp_path / "export.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "export.toml"
    starter = init_config(data, out, preset="htcds")
    written = ReleaseConfig.load(out)
    assert written.domains_confirmed  # every declared domain is the preset's
    assert written.dataset.subject_id == "RecordId"
    names = set(written.schema.names)
    assert {"Gender", "Type of Exploitation", "CAS_STATUS", "vic_TraffickinStatusDecisionMakingOrg"} <= names
    assert "prs_FirstName" not in names and "prs_MobilePhone" not in names
    assert written.schema.column("Gender").values == cfg.schema.column("prs_Gender").values
    assert starter.unmatched_preset == ["cas_OutgoingReferralDate"]
    assert set(starter.unmatched_input) == {"RecordId", "prs_FirstName", "prs_MobilePhone"}
    review = (tmp_path / "export.review.md").read_text()
    assert "Preset columns absent from the input: `cas_OutgoingReferralDate`" in review
    assert "Name1" not in review and "+4470000" not in review
    table = read_records(data, written.schema)
    assert table.n_records == len(frame)


def test_init_preset_reports_values_outside_the_domain_and_proposes_unmatched(tmp_path):
    cfg = ReleaseConfig.load(V2024)
    frame = records(cfg.schema, 200, seed=6)
    frame.loc[:4, "gender"] = "Female"  # not a v2024 code (the 2021 data used Female / Male)
    frame["caseNotes"] = ["text " * 8 + str(i) for i in range(len(frame))]
    frame["dataSource"] = ["Hotline", "Case management"] * 100
    data = tmp_path / "v2024.csv"
    frame.to_csv(data, index=False)
    starter = init_config(data, tmp_path / "a.toml", preset="ctdc-v2024")
    assert starter.domains_confirmed
    assert any("gender" in w and "outside the preset's domain" in w for w in starter.warnings)
    assert "Female" not in "\n".join(starter.warnings)
    mixed = init_config(data, tmp_path / "b.toml", preset="ctdc-v2024", propose_unmatched=True)
    assert not mixed.domains_confirmed  # a domain read from the data needs confirming
    rows = {r.column: r for r in mixed.review}
    assert rows["dataSource"].domain_from == "data: confirm"
    assert rows["caseNotes"].kind == "left out"
    assert rows["gender"].domain_from == "preset ctdc-v2024"


def test_demo_data_maps_fully_onto_the_demo_preset_and_partly_onto_v2024(demo_csv, tmp_path):
    full = init_config(demo_csv, tmp_path / "demo.toml", preset="ctdc-demo")
    assert full.domains_confirmed and not full.unmatched_preset
    assert full.unmatched_input == []  # caseId is the demo preset's subject id
    partial = init_config(demo_csv, tmp_path / "v.toml", preset="ctdc-v2024")
    # the demo keeps the condensed set columns; v2024 has one binary column per value
    assert {"typeOfLabour", "typeOfSex", "recruiterRelation"} <= set(partial.unmatched_input)
    assert "typeOfLabourAgriculture" in partial.unmatched_preset


def test_match_columns_is_case_and_spacing_insensitive_and_refuses_ambiguity():
    cols = [("prs_Gender", "Gender"), ("hte_Type", "Type"), ("spl_Type", "Type")]
    m = match_columns(["GENDER", "type", "prs gender"], "htcds", cols)
    assert m.pairs == {"GENDER": "prs_Gender"}
    assert m.unmatched_input == ["type", "prs gender"]  # ambiguous; second input for prs_Gender
    assert normalise(" Trafficking-Status_ ") == "traffickingstatus"


# -- domains against the standard's own files ------------------------------------------------------
def test_htcds_picklists_are_the_standards(shared_data, tmp_path):
    fields = {f.name: f for f in htcds_fields(shared_data / "htcds" / "HTCDS Field Standards 2.0.ods")}
    cfg = ReleaseConfig.load(_uncommented(HTCDS, tmp_path))
    for col in cfg.schema.columns:
        field = fields[col.name]
        assert col.description == field.label
        if field.value_names and not field.value_names[0].startswith("Use ISO"):
            assert col.values == field.value_names, col.name
            for label, name in zip(field.value_labels, field.value_names, strict=True):
                assert col.mapping.get(label, label) == name, (col.name, label)
            kind = "set" if field.type == "Multiselect Picklist" else ("ordinal", "categorical")
            assert col.kind in kind, col.name
        if field.type == "Date":
            assert col.kind == "date"
        if field.type == "Number":
            assert col.kind == "numeric"


def test_every_htcds_field_is_classified_in_the_docs(shared_data):
    """docs/presets.md lists every HTCDS field once: released, never released, or left out."""
    fields = [f.name for f in htcds_fields(shared_data / "htcds" / "HTCDS Field Standards 2.0.ods")
              if f.name != "N/A"]
    docs = (REPO / "docs" / "presets.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (released|never released|left out) \|", docs, re.M)
    listed = [name for name, _ in rows]
    assert sorted(listed) == sorted(fields)
    released = {name for name, how in rows if how == "released"}
    cfg = tomllib.loads(_uncomment_text(HTCDS.read_text()))
    assert released == {c["name"] for c in cfg["columns"]}


def _uncomment_text(text: str) -> str:
    return re.sub(r"(?m)^# (\[\[columns\]\]|\[columns\.map\]|name = |kind = |values = |"
                  r"delimiter = |map = |missing = |sensitive = |description = |    |\])", r"\1", text)


def test_htcds_excel_template_maps_onto_the_preset(shared_data):
    template = htcds_template_columns(shared_data / "htcds" / "HTCDS Excel Spreadsheet v2.0.xlsx")
    cfg = ReleaseConfig.load(HTCDS)
    m = match_columns(template, "htcds", [(c.name, c.description) for c in cfg.schema.columns])
    released_in_template = {c.name for c in cfg.schema.columns} & {
        "vic_TraffickingStatusDecisionMakingOrg", *template}
    assert set(m.pairs.values()) == released_in_template  # incl. the template's misspelt field


def test_country_codes_are_iso_3166_alpha_3():
    pycountry = pytest.importorskip("pycountry", reason="pycountry (test extra) not installed")
    iso = sorted(c.alpha_3 for c in pycountry.countries)
    for path, names in ((V2024, ["citizenship", "CountryOfExploitation"]), (HTCDS, ["prs_Citizenship"])):
        cfg = ReleaseConfig.load(path)
        for name in names:
            assert sorted(cfg.schema.column(name).values) == iso
    alpha2 = {c.alpha_2: c.alpha_3 for c in pycountry.countries}
    assert dict(ReleaseConfig.load(HTCDS).schema.column("prs_Citizenship").mapping) == alpha2


def test_ctdc_v2024_matches_the_codebook(shared_data):
    if not pdftotext_available():
        pytest.skip("pdftotext (poppler-utils) not installed: cannot read the codebook PDF")
    text = pdf_text(shared_data / "ctdc_codebooks" / "Codebook_CTDC_global_synthetic_data_v2024.pdf")
    names, details = ctdc_v2024_variables(text)
    cfg = ReleaseConfig.load(V2024)
    assert names == cfg.schema.names == V2024_NAMES
    assert len(details) == 27
    dash = str.maketrans({"\u2014": "--", "\u2013": "--"})
    for i, name in enumerate(names, start=1):
        var, col = details[i], cfg.schema.column(name)
        # variable 14's detailed name differs from the list's; init --preset accepts both
        assert var.name == name or (i == 14 and var.name == "meansWithholdDocuments")
        assert col.description == var.label
        codes = [v for v in var.values if not v.startswith("NULL")]
        assert col.allows_missing == any(v.startswith("NULL") for v in var.values), name
        if var.type == "binary numeric":
            assert codes == ["1"] and col.values == ("1",)
        elif name == "yearOfRegistration":
            lo, hi = map(int, re.findall(r"\d{4}", codes[0]))
            assert col.values == tuple(str(y) for y in range(lo, hi + 1))
        elif "ISO 3166-1 Alpha-3" in " ".join(codes):
            assert len(col.values) == 249 and all(re.fullmatch(r"[A-Z]{3}", v) for v in col.values)
        else:
            expected = tuple(v.split(" [")[0].split(" (")[0].translate(dash).strip() for v in codes)
            assert col.values == expected, name
            for printed in codes:  # the codebook's own spelling is accepted through the map
                p = printed.split(" [")[0].split(" (")[0].strip()
                assert col.mapping.get(p, p) in col.values


def test_demo_documents_its_differences_from_v2024():
    from ptsynth import demo

    doc = demo.__doc__ or ""
    assert "not the v2024 format" in doc
    frame = demo.generate_demo(300, seed=0)
    v2024 = set(V2024_NAMES)
    shared = [c for c in frame.columns if c in v2024]
    # the columns the demo shares with v2024 carry codes the v2024 preset accepts (years aside)
    cfg = ReleaseConfig.load(V2024)
    for c in shared:
        if c == "yearOfRegistration":
            continue
        values = set(frame[c].dropna().astype(str)) - {""}
        assert values <= set(cfg.schema.column(c).values) | set(cfg.schema.column(c).mapping), c
    assert pd.Series(frame["yearOfRegistration"]).max() == 2023  # documented: v2024 ends at 2022
