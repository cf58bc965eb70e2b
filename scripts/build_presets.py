"""Build the standard presets ``configs/htcds_2.toml`` and ``configs/ctdc_synthetic_v2024.toml``.

Why a script: a preset's domains must be *exactly* the standard's picklists / codebook codes,
so they are written from the standard's own files rather than typed by hand, and the choices
made on top of the standard (which fields are released, as which kind, which are never released)
sit in one reviewable table below (``HTCDS``). Dev-time only: it reads the HTCDS field
standards (``.ods``) with the standard library (``tests/presets/standards.py``) and the ISO 3166-1
list from ``pycountry`` (in the ``test`` extra); nothing here runs at release time.

Usage (from the repository root, with ``../shared/data`` present)::

    .venv/bin/python scripts/build_presets.py [--shared ../shared/data]

Writes each preset to ``configs/`` and its packaged copy to ``src/ptsynth/configs/``
(``ptsynth init --preset`` reads the packaged copy); the tests check both are identical and
re-check the domains against the standard's files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "presets"))

from standards import htcds_fields  # noqa: E402

# -- ISO 3166-1 ---------------------------------------------------------------------------------


def iso3166() -> list[tuple[str, str]]:
    """(alpha-3, alpha-2) of every ISO 3166-1 country, sorted by alpha-3."""
    import pycountry

    return sorted((c.alpha_3, c.alpha_2) for c in pycountry.countries)


# -- TOML writing (by hand: the presets carry comments) -------------------------------------------


def q(s: str) -> str:
    """A TOML basic string (JSON escapes are valid TOML escapes)."""
    return json.dumps(s, ensure_ascii=False)


def str_list(values: list[str], indent: str = "") -> str:
    """A TOML array of strings wrapped at about 100 characters."""
    lines, line = [], ""
    for v in values:
        item = q(v) + ", "
        if line and len(indent) + 4 + len(line) + len(item) > 100:
            lines.append(line.rstrip())
            line = ""
        line += item
    lines.append(line.rstrip().rstrip(","))
    if len(lines) == 1:
        return "[" + lines[0] + "]"
    return "[\n" + "".join(f"{indent}    {ln}\n" for ln in lines) + indent + "]"


def inline_map(mapping: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{q(k)} = {q(v)}" for k, v in mapping.items()) + " }"


def column(entry: dict, comment: str = "") -> str:
    """One ``[[columns]]`` table; a long ``map`` goes last, as a ``[columns.map]`` sub-table."""
    entry = dict(entry)
    long_map = entry.pop("map") if len(entry.get("map", {})) > 6 else None
    out = []
    if comment:
        out += [f"# {ln}" if ln else "#" for ln in comment.splitlines()]
    out.append("[[columns]]")
    for key, value in entry.items():
        if isinstance(value, bool):
            out.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            out.append(f"{key} = {value}")
        elif isinstance(value, str):
            # dates are bare TOML dates, everything else a string
            bare = key in ("start", "end")
            out.append(f"{key} = {value if bare else q(value)}")
        elif isinstance(value, dict):
            out.append(f"{key} = {inline_map(value)}")
        elif value and isinstance(value[0], str):
            out.append(f"{key} = {str_list(list(value))}")
        else:
            out.append(f"{key} = [{', '.join(str(v) for v in value)}]")
    if long_map:
        out.append("[columns.map]")
        out += [f"{q(k)} = {q(v)}" for k, v in long_map.items()]
    return "\n".join(out) + "\n"


# =============================================================================================
# HTCDS 2.0
# =============================================================================================
#: How each HTCDS field is treated. Keys are the standard's "Field Name including Prefix".
#: "release": (kind and the choices on top of the standard); "never": identifiers, contact
#: details, free text (never released); "out": left out, with the reason.
AGE_BANDS = ["0--8", "9--17", "18--20", "21--23", "24--26", "27--29", "30--38", "39--47", "48+"]
AGE_EDGES = [0, 9, 18, 21, 24, 27, 30, 39, 48, 120]

HTCDS_RELEASE: dict[str, dict] = {
    "prs_Birthdate": {"kind": "date", "period": "year", "start": "1930-01-01", "end": "2029-12-31",
                      "quasi_identifier": True,
                      "why": "date -> year of birth (a public range 1930-2029: narrow it to your data's years)"},
    "prs_Gender": {"kind": "categorical", "quasi_identifier": True, "why": "categorical"},
    "prs_Deceased": {"kind": "checkbox", "why": "categorical true / false (common spellings mapped)"},
    "prs_MaritalStatus": {"kind": "categorical", "quasi_identifier": True, "why": "categorical"},
    "prs_NumberOfChildren": {"kind": "numeric", "bins": [0, 1, 2, 3, 5, 100],
                             "labels": ["0", "1", "2", "3--4", "5+"], "quasi_identifier": True,
                             "why": "numeric, public bins 0, 1, 2, 3-4, 5+"},
    "prs_HighestLevelOfEducation": {"kind": "ordinal", "quasi_identifier": True,
                                    "why": "ordinal (ISCED 2011 levels, in order)"},
    "prs_Citizenship": {"kind": "country", "quasi_identifier": True,
                        "why": "ONE citizenship per person "
                               "(categorical over ISO 3166-1 alpha-3; alpha-2 mapped). A cell with "
                               "several citizenships is refused: export one, or declare a set "
                               "(249 member columns: slow)"},
    "vic_TraffickingStatus": {"kind": "categorical", "why": "categorical"},
    "vic_TraffickingStatusDecisionMakingOrg": {"kind": "categorical", "why": "categorical"},
    "vic_RelationshipToTrafficker": {"kind": "categorical", "sensitive": True, "why": "categorical"},
    "vic_AgeWhenTrafficked": {"kind": "numeric", "bins": AGE_EDGES, "labels": AGE_BANDS,
                              "quasi_identifier": True,
                              "why": "numeric, the CTDC age bands (0--8 ... 48+) as public bins"},
    "vic_RecruitmentWebsitesAndApps": {"kind": "set", "sensitive": True, "optional": True,
                                       "why": "set"},
    "vic_MethodOfRecruitment": {"kind": "set", "sensitive": True, "why": "set"},
    "vic_MethodsOfControl": {"kind": "set", "sensitive": True, "why": "set"},
    "vic_TypeOfExploitation": {"kind": "set", "sensitive": True, "why": "set"},
    "vic_ForcedLabourIndustry": {"kind": "categorical", "sensitive": True,
                                 "why": "categorical (ISIC v4 sections); the optional tier-2/3 "
                                        "sub-levels are not released"},
    "vic_TypeOfSexExploitation": {"kind": "set", "sensitive": True, "why": "set"},
    "vic_ExploitationWebsitesAndApps": {"kind": "set", "sensitive": True, "optional": True,
                                        "why": "set"},
    "cas_Status": {"kind": "categorical", "why": "categorical"},
    "cas_IncomingReferralDate": {"kind": "date", "period": "year", "start": "2000-01-01",
                                 "end": "2030-12-31", "quasi_identifier": True,
                                 "why": "date -> year (public range 2000-2030: narrow it)"},
    "cas_ReasonForIncomingReferral": {"kind": "categorical", "why": "categorical"},
    "cas_OutgoingReferralDate": {"kind": "date", "period": "year", "start": "2000-01-01",
                                 "end": "2030-12-31", "quasi_identifier": True,
                                 "why": "date -> year (public range 2000-2030: narrow it)"},
    "cas_ReasonForOutgoingReferral": {"kind": "categorical", "why": "categorical"},
}

_NEVER_TEXT = "free text: may name or describe a person; never released"
_NEVER_LOOKUP = "lookup to an organisation / person record: an identifier; never released"
_NEVER_CONTACT = "name / contact / address detail: a direct identifier; never released"
HTCDS_NEVER: dict[str, str] = {
    **{f: _NEVER_CONTACT for f in (
        "org_Name", "org_ShippingCity", "org_ShippingState", "org_ShippingStreet",
        "org_ShippingPostalCode", "org_ShippingLongitude", "org_ShippingLatitude", "org_Phone",
        "prs_Salutation", "prs_FirstName", "prs_MiddleName", "prs_SecondName", "prs_Email",
        "prs_HomePhone", "prs_MobilePhone", "prs_MailingCity", "prs_MailingState",
        "prs_MailingStreet", "prs_MailingPostalCode", "prs_MailingLongitude",
        "prs_MailingLatitude", "hte_City", "hte_State", "hte_Street", "hte_PostalCode",
        "hte_Longitude", "hte_Latitude")},
    "prs_IdentityNumber": "national identity number: a direct identifier; never released",
    "prs_Title": "free text (position within an organisation); never released",
    **{f: _NEVER_TEXT for f in (
        "vic_DetailsOfVulnerabilities", "per_RoleDetails", "cas_ReasonForCaseClosure",
        "cas_IncomingReferralDetails", "cas_OutgoingReferralDetails", "cco_CaseComment",
        "hte_Description", "spl_Objectives", "spl_ActionPlan")},
    **{f: _NEVER_LOOKUP for f in (
        "vic_LocationOfRecruitment", "vic_LocationOfExploitation", "cas_CaseOwner",
        "cas_ReferringOrganisation", "cas_ReferringPrimaryCaseWorker", "cas_ReferredOrganisation",
        "cas_ReferredPrimaryCaseWorker")},
}

HTCDS_OUT: dict[str, str] = {
    "org_ShippingCountry": "describes the organisation, not the person",
    "org_Type": "describes the organisation, not the person",
    "prs_PrimaryLanguage": "ISO 639-2 (about 480 codes): a strong quasi-identifier with a large "
                           "domain; add it with a public sub-list of languages if needed",
    "prs_SecondaryLanguage": "as prs_PrimaryLanguage",
    "prs_MailingCountry": "part of the mailing address (Text in the standard); add it as "
                          "categorical over ISO 3166-1 alpha-2 if country of residence is needed",
    "vic_AgreementToManagePersonalData": "DEPRECATED in the standard (consent: process field)",
    "vic_Vulnerabilities": "DEPRECATED in the standard (replaced by Assessment and Planning, "
                           "which defines no fields yet)",
    "per_RoleInProcess": "describes a perpetrator: another person, another privacy unit",
    "hte_Country": "historic trafficking events are many rows per case: a per-person release "
                   "needs an aggregation the standard does not define",
    "hte_Date": "as hte_Country (event table)",
    "hte_Type": "as hte_Country (event table)",
    "spl_PlannedEndDate": "support plans are many rows per case (as hte_Country)",
    "spl_ActualEndDate": "support plans are many rows per case (as hte_Country)",
    "spl_Type": "support plans are many rows per case (as hte_Country)",
    "con_Consent": "process field: records without consent must not be in the input at all",
}

CHECKBOX = (["true", "false"],
            {"TRUE": "true", "True": "true", "1": "true", "yes": "true", "Yes": "true",
             "FALSE": "false", "False": "false", "0": "false", "no": "false", "No": "false"})


def htcds_preset(shared: Path) -> str:
    fields = {f.name: f for f in htcds_fields(shared / "htcds" / "HTCDS Field Standards 2.0.ods")}
    classified = set(HTCDS_RELEASE) | set(HTCDS_NEVER) | set(HTCDS_OUT)
    named = {n for n in fields if n != "N/A"}
    if named - classified or classified - named:
        raise SystemExit(f"unclassified: {sorted(named - classified)}; unknown: {sorted(classified - named)}")
    countries = iso3166()
    head = '''\
# Preset: IOM Human Trafficking Case Data Standard (HTCDS) 2.0, one row per victim.
#
# Built by scripts/build_presets.py from "HTCDS Field Standards 2.0.ods" (UNMigration/HTCDS,
# CC BY 4.0). Every `values` list below is the standard's picklist (its "Value Names", the
# system identifiers) and every `map` turns the standard's "Value Labels" into them, so an
# export with either spelling validates. Country codes are ISO 3166-1 alpha-3, as the
# standard asks ("Use ISO 3166 country codes"). Bin edges and date ranges are public choices
# written here, not read from any record. All domains are therefore PUBLIC: domains_confirmed.
#
# Which HTCDS fields are released, as which kind, which are NEVER released (identifiers,
# contact details, free text, lookups to other records) and which are left out and why:
# docs/presets.md (the same table the build script uses). Fields not declared below are
# ignored (`extra_columns = "ignore"`): an export may hold names and phone numbers; they are
# never read into the release.
#
# No subject id: the standard defines none. If your export has several rows per person, add
# `subject_id = "<your record id column>"` to [dataset] (rows sharing it merge into one
# record); `ptsynth init --preset htcds` proposes one from an id-like column.
# Narrow the date ranges (start / end) to the years your release covers: each year in the
# range is a code, and empty years cost accuracy.

[dataset]
name = "htcds-2.0"
description = "Victim case records in the IOM Human Trafficking Case Data Standard 2.0 (one row per victim)."
extra_columns = "ignore"
missing_values = [""]
domains_confirmed = true

[privacy]
epsilon = 1.0
delta = 1e-6

[release]
reporting_length = 3
k = 10
synthesizer = "pgm"

[evaluation]
holdout_fraction = 0.0

'''
    parts = [head]
    for name, field in fields.items():
        if name not in HTCDS_RELEASE:
            continue
        rule = dict(HTCDS_RELEASE[name])
        why = rule.pop("why")
        optional = rule.pop("optional", False)
        kind = rule.pop("kind")
        entry: dict = {"name": name}
        comment = f"{name} ({field.label}): HTCDS {field.type}{', Core' if field.core else ''} -> {why}"
        if kind in ("categorical", "ordinal", "set"):
            names = list(field.value_names)
            labels = list(field.value_labels)
            if len(names) != len(labels):
                raise SystemExit(f"{name}: {len(names)} value names, {len(labels)} labels")
            entry["kind"] = kind
            entry["values"] = names
            mapping = {lab: nm for lab, nm in zip(labels, names, strict=True) if lab != nm}
            if kind == "set":
                entry["delimiter"] = ";"
            if mapping:
                entry["map"] = mapping
        elif kind == "checkbox":
            entry["kind"] = "categorical"
            entry["values"], entry["map"] = CHECKBOX[0], dict(CHECKBOX[1])
        elif kind == "country":
            entry["kind"] = "categorical"
            entry["values"] = [a3 for a3, _ in countries]
            entry["map"] = {a2: a3 for a3, a2 in countries}
        elif kind == "numeric":
            entry.update(kind="numeric", bins=rule.pop("bins"), labels=rule.pop("labels"),
                         out_of_range="error")
        elif kind == "date":
            entry.update(kind="date", period=rule.pop("period"), start=rule.pop("start"),
                         end=rule.pop("end"), out_of_range="error")
        entry["missing"] = "allow"
        entry.update(rule)  # quasi_identifier / sensitive
        entry["description"] = field.label
        block = column(entry, comment)
        if optional:  # written commented out: uncomment to release it
            block = "\n".join(
                ln if ln.startswith("#") else "# " + ln for ln in block.splitlines()
            ).replace("# " + "[[columns]]", "#" + OPTIONAL_NOTE + "\n# [[columns]]", 1) + "\n"
        parts.append(block + "\n")
    return "".join(parts).rstrip() + "\n"


#: Why the optional blocks are commented out (measured: see docs/presets.md).
OPTIONAL_NOTE = (" OPTIONAL (non-core, 15 platforms: 15 more encoded columns, which slows the\n"
                 "# pgm fit markedly). Uncomment the block below to release it.")


# =============================================================================================
# CTDC Global Synthetic Data v2024
# =============================================================================================
CTDC_MEANS = [
    ("meansDebtBondageEarnings", "Means of Control: Debt Bondage and/or Withhold Wages"),
    ("meansThreats", "Means of Control: Threats to Individual and/or Family"),
    ("meansAbusePsyPhySex", "Means of Control: Abuse (Psychological, Physical, and/or Sexual)"),
    ("meansFalsePromises", "Means of Control: False promises"),
    ("meansDrugsAlcohol", "Means of Control: Psychoactive Substances"),
    ("meansDenyBasicNeeds", "Means of Control: Restricts Finance, Movement, Medical Care, and/or Necessities"),
    ("meansExcessiveWorkHours", "Means of Control: Excessive Working Hours"),
    ("meansWithholdDocs", "Means of Control: Withhold Documents"),
    ("isForcedLabour", "Type of Trafficking: Forced Labour"),
    ("isSexualExploit", "Type of Trafficking: Sexual Exploitation"),
    ("isOtherExploit", "Type of Trafficking: Other Exploit"),
    ("typeOfLabourAgriculture", "Type of Labour Exploit: Agriculture"),
    ("typeOfLabourConstruction", "Type of Labour Exploit: Construction"),
    ("typeOfLabourDomesticWork", "Type of Labour Exploit: Domestic Work"),
    ("typeOfLabourHospitality", "Type of Labour Exploit: Hospitality"),
    ("typeOfSexProstitution", "Type of Sexual Exploit: Prostitution"),
    ("typeOfSexPornography", "Type of Sexual Exploit: Pornography"),
    ("recruiterRelationIntimatePartner", "Recruiter Relation: Intimate Partner"),
    ("recruiterRelationFriend", "Recruiter Relation: Friend"),
    ("recruiterRelationFamily", "Recruiter Relation: Family"),
    ("recruiterRelationOther", "Recruiter Relation: Other"),
]
CTDC_AGE = ["0--8", "9--17", "18--20", "21--23", "24--26", "27--29", "30--38", "39--47", "48+"]
CTDC_MONTHS = ["0--12", "13--24", "25+"]


def _dash_map(values: list[str]) -> dict[str, str]:
    """Other spellings of the codebook's ranges: em dash (as printed), en dash, one hyphen."""
    out = {}
    for v in values:
        if "--" in v:
            for dash in ("\u2014", "\u2013", "-"):
                out[v.replace("--", dash)] = v
    return out


def ctdc_v2024_preset() -> str:
    countries = iso3166()
    head = '''\
# Preset: CTDC Global Synthetic Data, codebook version 2 (February 2024): its 27 variables,
# exactly, in the codebook's order, with the codebook's names, codes and missing code.
#
# Built by scripts/build_presets.py; checked against Codebook_CTDC_global_synthetic_data_v2024.pdf
# by tests/presets (where ../shared is present). Choices on top of the codebook:
#  * NULL [missing data] is the codebook's missing code: both "NULL" and an empty cell are
#    missing (missing_values); a released file writes missing as an empty cell.
#  * yearOfRegistration: "numeric, Range [2002, 2022]", no NULL listed -> ordinal 2002..2022,
#    missing forbidden.
#  * ageBroad / traffickMonths: the codebook prints the ranges with a dash ("0—8"), CTDC's
#    CSV files write two hyphens ("0--8"); "0--8" is the declared value and the em dash,
#    en dash and single-hyphen spellings are mapped onto it.
#  * citizenship / CountryOfExploitation: "Values based on ISO 3166-1 Alpha-3 Codes": all 249
#    ISO 3166-1 alpha-3 codes (Kosovo is coded as Serbia, Appendix II). CTDC suppresses some
#    countries in its release; a domain only says which codes MAY appear.
#  * Variable 14 is named meansWithholdDocs in the list of variables and in Appendix II, and
#    meansWithholdDocuments in its detailed description: the list's name is used;
#    `ptsynth init --preset ctdc-v2024` accepts the other as an alias.
#  * The multi-valued fields (type of labour, type of sexual exploitation, recruiter relation,
#    and the merged means of control) are one binary column per value, as in the codebook:
#    "1" or NULL.
# All domains are the codebook's: PUBLIC, domains_confirmed.

[dataset]
name = "ctdc-synthetic-v2024"
description = "CTDC Global Synthetic Data, 27 variables of codebook v2 (February 2024)."
extra_columns = "error"
missing_values = ["", "NULL"]
domains_confirmed = true

[privacy]
epsilon = 1.0
delta = 1e-6

[release]
reporting_length = 3
k = 10
synthesizer = "pgm"

[evaluation]
target = "isSexualExploit"
holdout_fraction = 0.0

'''
    parts = [head]
    parts.append(column({
        "name": "yearOfRegistration", "kind": "ordinal",
        "values": [str(y) for y in range(2002, 2023)], "missing": "forbid",
        "quasi_identifier": True, "description": "Year of Registration",
    }, "Variable 1: numeric, Range [2002, 2022]") + "\n")
    parts.append(column({
        "name": "gender", "kind": "categorical",
        "values": ["Man", "Woman", "Trans/Transgender/NonConforming"], "missing": "allow",
        "quasi_identifier": True, "description": "Gender",
    }, "Variable 2: string") + "\n")
    parts.append(column({
        "name": "ageBroad", "kind": "ordinal", "values": CTDC_AGE, "map": _dash_map(CTDC_AGE),
        "missing": "allow", "quasi_identifier": True, "description": "Age Broad",
    }, "Variable 3: string (age bands, in order)") + "\n")
    for i, (name, label) in enumerate((("citizenship", "Citizenship"),
                                       ("CountryOfExploitation", "Country of Exploitation"))):
        parts.append(column({
            "name": name, "kind": "categorical", "values": [a3 for a3, _ in countries],
            "missing": "allow", "quasi_identifier": True, "description": label,
        }, f"Variable {4 + i}: string, ISO 3166-1 alpha-3") + "\n")
    parts.append(column({
        "name": "traffickMonths", "kind": "ordinal", "values": CTDC_MONTHS,
        "map": _dash_map(CTDC_MONTHS), "missing": "allow", "sensitive": True,
        "description": "Trafficking Duration, in Months",
    }, "Variable 6: string (0-1 yr, 1-2 yrs, 2+ yrs)") + "\n")
    for i, (name, label) in enumerate(CTDC_MEANS):
        parts.append(column({
            "name": name, "kind": "categorical", "values": ["1"], "missing": "allow",
            "sensitive": True, "description": label,
        }, f"Variable {7 + i}: binary numeric, 1 or NULL") + "\n")
    return "".join(parts).rstrip() + "\n"


def htcds_docs_table(shared: Path) -> str:
    """The field-by-field table of docs/presets.md (every HTCDS field, once)."""
    fields = htcds_fields(shared / "htcds" / "HTCDS Field Standards 2.0.ods")
    rows = ["| field | treatment | HTCDS type | released as / why |", "|---|---|---|---|"]
    for f in fields:
        if f.name == "N/A":
            continue
        if f.name in HTCDS_RELEASE:
            rule = HTCDS_RELEASE[f.name]
            how, why = "released", rule["why"] + (" (optional block, commented out)" if rule.get("optional") else "")
        elif f.name in HTCDS_NEVER:
            how, why = "never released", HTCDS_NEVER[f.name]
        else:
            how, why = "left out", HTCDS_OUT[f.name]
        rows.append(f"| `{f.name}` | {how} | {f.type}{', Core' if f.core else ''} | {why} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    for name, text in (("htcds_2.toml", htcds_preset(args.shared)),
                       ("ctdc_synthetic_v2024.toml", ctdc_v2024_preset())):
        for folder in (REPO / "configs", REPO / "src" / "ptsynth" / "configs"):
            (folder / name).write_text(text, encoding="utf-8")
        print(f"wrote configs/{name} and src/ptsynth/configs/{name}")
    docs = REPO / "docs" / "presets.md"
    text = docs.read_text(encoding="utf-8")
    begin, end = "<!-- htcds-table: begin (scripts/build_presets.py) -->", "<!-- htcds-table: end -->"
    head, rest = text.split(begin, 1)
    docs.write_text(head + begin + "\n" + htcds_docs_table(args.shared) + "\n" + end
                    + rest.split(end, 1)[1], encoding="utf-8")
    print("wrote the HTCDS table of docs/presets.md")


if __name__ == "__main__":
    main()
