"""Who exists and who may do what: tenants, agents, users, technicians.

model.py        tenants, agents, users, passwords
technicians.py  which tenants each technician looks after
"""
