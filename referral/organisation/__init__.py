"""Districts (ASD-Bezirke) and schools: the scopes that memberships refer to."""
