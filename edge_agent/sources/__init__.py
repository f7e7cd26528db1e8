"""PBX source drivers: one package per driver, behind the small interface in ``base.py``.

    base.py         the Source / ParserKit interface every driver implements
    registry.py     which driver package serves each source kind
    options.py      typed reading of a source's options table
    rejection.py    why a raw unit is not a call
    streams/        what the TCP stream drivers share
    lync_cdr/       Lync / Skype for Business LcsCDR (ODBC poll)
    mivb_smdr/      MiVoice Business SMDR (TCP)
    mcs_ipsmdr/     MCS IP SMDR events (TCP, listen or push)
    mivo250_smdr/   MiVoice Office 250 SMDR socket
    mivo250_oai/    MiVoice Office 250 System OAI
    mivo250_socket/ the MiVO250 socket both of its drivers use

A driver knows its wire format and nothing else: the spool, network and clock are passed in.
"""
