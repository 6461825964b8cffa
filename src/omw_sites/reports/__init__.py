"""Reports read from the store: the regional balance and the site sheet (karta terenu)."""

from omw_sites.reports.balance import (
    BalanceReport,
    balance_from_store,
    balanced_shortlist,
    gini,
    regional_balance,
    write_balance,
)
from omw_sites.reports.sheet import UnknownSiteError, render_sheet, sheet_pdf, write_sheet

__all__ = [
    "BalanceReport",
    "UnknownSiteError",
    "balance_from_store",
    "balanced_shortlist",
    "gini",
    "regional_balance",
    "render_sheet",
    "sheet_pdf",
    "write_balance",
    "write_sheet",
]
