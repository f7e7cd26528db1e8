"""MiVoice Business / 3300 ICP SMDR driver: fixed-width text lines over TCP (formats.md section 2).

    driver.py  the parser (line -> ICDR), its settings; make_source / make_parser
    layout.py  column maps generated from the SMDR option flags; layout auto-detection
"""
