"""The interface for the Jugendamt's case software (issue 15): a REST API under /api/v1 and signed webhooks.

- models.py: API clients (districts, scopes, hashed secrets, webhook), their short-lived access tokens.
- clients.py: the operations on clients (create, rotate, revoke, webhook), shared by admin page and CLI.
- auth.py: bearer tokens on the API's routes (scope, district, rate limit, an audit entry per call).
- problems.py: errors as RFC 9457 problem details with a German `detail`.
"""
