"""Per-tenant cost and fraud alarms (docs/cost-alarms.md).

rules.py     the rules document (TOML) a tenant admin writes, parsed and validated
evaluate.py  pure: call facts -> findings; how "usual" volume is computed
store.py     rules, marks, the calls to evaluate, alarms and their calls in the store
deliver.py   the email listing an alarm's calls, the HMAC-signed webhook, back-off
runner.py    one pass: evaluate new and re-rated calls per tenant, then deliver
"""
