"""OAuth 2.0 authorization server pieces, a module per RFC where that reads well.

``grants`` holds one module per grant type; ``client_auth`` the secret-based
client-authentication methods. Which of them an application serves is
``idp.features``' table.
"""
