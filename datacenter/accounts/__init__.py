"""Who exists and who may do what: tenants, agents, users, technicians, scopes, sign-in.

tenants.py      tenants: the customers whose calls the data centre holds
agents.py       edge agents enrolled per tenant, and their pinned signing certificates
users.py        web console users: roles, sign-in (sign_in / authenticate)
passwords.py    the password policy (length, zxcvbn) and argon2id hashes
technicians.py  which tenants each technician looks after
scopes.py       what part of its tenant a user sees (user_scopes), number masking per role
sessions.py     server-side sessions: start, resume, end one or all of a user's
throttle.py     sign-in attempts, growing waits per account and address, lock-out
totp.py         the optional TOTP second factor and one-use recovery codes
audit.py        the audit log: sign-ins, failures, lock-outs, admin changes
"""
