"""Report templates: the structured findings each service's report carries.

The defaults follow what each service records; an operator may replace or add templates with the
``report_templates`` setting (a TOML table of service → list of field names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from records.errors import InvalidFindings

MAX_FINDING_CHARS = 200
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


@dataclass(frozen=True)
class ReportTemplate:
    """The findings fields of one service's report; ``family_opt_in``: the report reaches the
    family only when the clinician ticks "share with family" (counselling)."""

    service: str
    fields: tuple[str, ...]
    family_opt_in: bool = False

    def check(self, findings: Mapping[str, str]) -> dict[str, str]:
        """The findings, if every key is a field of this template and every value short text."""
        unknown = sorted(set(findings) - set(self.fields))
        if unknown:
            raise InvalidFindings(
                f"unknown findings for {self.service}: {', '.join(unknown)} "
                f"(fields: {', '.join(self.fields)})"
            )
        too_long = [k for k, v in findings.items() if len(v) > MAX_FINDING_CHARS]
        if too_long:
            raise InvalidFindings(f"findings over {MAX_FINDING_CHARS} characters: {too_long[0]}")
        return dict(findings)

    def to_wire(self) -> dict[str, object]:
        return {
            "service": self.service,
            "fields": list(self.fields),
            "family_opt_in": self.family_opt_in,
        }


DEFAULT_TEMPLATES: dict[str, ReportTemplate] = {
    "ophthalmology": ReportTemplate(
        "ophthalmology",
        (
            "visual_acuity_right",
            "visual_acuity_left",
            "refraction_right",
            "refraction_left",
            "diagnosis",
        ),
    ),
    "paediatrics": ReportTemplate("paediatrics", ("weight_kg", "height_cm", "diagnosis")),
    "counselling": ReportTemplate("counselling", (), family_opt_in=True),
}
_ANY_OTHER = ("diagnosis",)


class Templates:
    """The templates in force: the defaults overlaid with configured ones."""

    def __init__(self, configured: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self._templates = dict(DEFAULT_TEMPLATES)
        for service, fields in (configured or {}).items():
            opt_in = DEFAULT_TEMPLATES.get(service, ReportTemplate(service, ())).family_opt_in
            self._templates[service] = ReportTemplate(service, tuple(fields), opt_in)

    def for_service(self, service: str) -> ReportTemplate:
        return self._templates.get(service) or ReportTemplate(service, _ANY_OTHER)
