"""`python -m omw_sites` = the `omw-sites` command."""

from omw_sites.cli import app

app(prog_name="omw-sites")
