"""Accounts: who is asking and what they may do.

Owns users, passwords and sign-in throttling, API tokens (accounts.py), the request's account
and permission checks (auth.py), the permission table and token scopes (permissions.py), which
rows an account sees (scope.py), the audit log (audit.py), rate limits (ratelimit.py), CSRF,
security headers and the CSP nonce (security.py).

May import: plumbing only (config, db, errors, models, registry, vocab, basemaps …). Every
other package may import it. Contracts: .importlinter.
"""
