"""The MiVoice Office 250 socket both of its drivers (SMDR and OAI) use.

    framing.py  length-prefixed framing (SMDR 0x84, OAI 0x87)
    link.py     connect and log in; refusal and out-of-step streams
"""
