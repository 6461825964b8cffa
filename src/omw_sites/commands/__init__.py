"""CLI command groups registered on the main ``omw-sites`` app by their owning stage."""
