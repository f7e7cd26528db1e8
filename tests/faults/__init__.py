"""Fault injection: a whole site run for real, one fault per test, exactly-once checked after each."""
