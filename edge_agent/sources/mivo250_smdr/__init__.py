"""MiVoice Office 250 / Mitel 5000 / Inter-Tel Axxess SMDR socket driver (formats.md section 4).

    driver.py  settings and the SMDR socket; make_source / make_parser
    record.py  one 80-column record -> ICDR
"""
