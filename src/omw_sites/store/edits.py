"""What a person may change on a site record (CLI ``site …``, API ``PATCH``): the status
lifecycle, the offer fields, their validation models, and the error the inventory raises
for an edit or update it refuses."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

STATUSES = ("available", "reserved", "sold", "withdrawn")
# allowed moves of the status lifecycle; sold is final
TRANSITIONS = {
    "available": ("reserved", "sold", "withdrawn"),
    "reserved": ("available", "sold", "withdrawn"),
    "withdrawn": ("available",),
    "sold": (),
}
OFFER_FIELDS = ("price_pln_m2", "lease_pln_m2_year", "contact", "documents", "sez_status", "notes")
EDITABLE = ("status", "status_date", *OFFER_FIELDS)


class InventoryError(ValueError):
    """An edit or update the inventory refuses (unknown site, bad status move, bad value)."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    url: HttpUrl
    public: bool = True


class SiteEdit(BaseModel):
    """What a person may change on a site record (CLI ``site …``, API ``PATCH``)."""

    model_config = ConfigDict(extra="forbid")
    status: str | None = None
    status_date: dt.date | None = None
    price_pln_m2: float | None = Field(default=None, ge=0, le=1_000_000)
    lease_pln_m2_year: float | None = Field(default=None, ge=0, le=100_000)
    contact: str | None = Field(default=None, max_length=500)
    documents: list[Document] | None = Field(default=None, max_length=100)
    sez_status: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=4000)

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str | None) -> str | None:
        if value is not None and value not in STATUSES:
            msg = f"unknown status {value!r}; one of {', '.join(STATUSES)}"
            raise ValueError(msg)
        return value
