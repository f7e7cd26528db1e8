"""Who exists and who may do what: tenants, agents, users, technicians.

tenants.py      tenants: the customers whose calls the data centre holds
agents.py       edge agents enrolled per tenant, and their pinned signing certificates
users.py        web console users: roles, login (authenticate)
passwords.py    the password policy and argon2id hashes
technicians.py  which tenants each technician looks after
"""
