"""Lync Server 2010/2013 and Skype for Business 2015/2019 driver: polls the LcsCDR database.

    driver.py  the poller (watermark, overlap window, ODBC errors); make_source / make_parser
    schema.py  schema probe, export query text, row format
    parser.py  LcsCDR row -> ICDR
"""
