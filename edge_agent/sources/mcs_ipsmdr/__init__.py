"""Mitel Communication Service (MCS) IP SMDR driver (formats.md section 3).

    driver.py  settings, listener and push modes; make_source / make_parser
    line.py    one 162-character event line -> IpSmdrEvent
    calls.py   events -> calls: the per-CallID state machine
"""
