"""Users and their memberships (role, scope)."""
