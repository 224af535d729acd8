"""OAuth 2.0 authorization server pieces, a module per RFC where that reads well."""
