"""callcollect edge agent: the appliance side."""

__version__ = "0.1.0"
