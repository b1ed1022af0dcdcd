"""Single sign-on with the city's (or the state's) identity providers over OpenID Connect (issue 14).

- settings.py: the providers and LOCAL_LOGIN_ROLES, read from the environment by config.py.
- client.py: Authlib's Flask client, with the ID token checks made strict (asymmetric signatures only,
  issuer, audience, authorised party, expiry, nonce) and the back-channel logout token's checks.
- identities.py: which account a provider identity (issuer + subject) belongs to, and linking it.
- routes.py: /login/oidc/<name>, its callback, back-channel logout, and the provider's logout.
"""
