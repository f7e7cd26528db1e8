"""MiVoice Office 250 System OAI driver (formats.md section 5).

    driver.py  settings, the OAI link (login, commands) and the framer; make_source / make_parser
    wire.py    the OAI text layout: one place that knows how events are encoded
    calls.py   OAI events (or SMR SMDR text) -> calls, per Call_ID
"""
