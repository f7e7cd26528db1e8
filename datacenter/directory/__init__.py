"""The tenant's directory: who had which extension when, imported from CSV or LDAP and edited.

    entries.py      read, add, edit and apply imported entries (periods never overlap)
    csv_import.py   parse a CSV file into entries, with errors by line, before anything is written
    ldap_import.py  read entries from LDAP / Active Directory with a read-only bind
    ldap_config.py  the LDAP connection and attribute mapping, from a TOML file

The table and its contract: datacenter/store/tables/directory.py. Calls are attributed to
entries by ``datacenter.store.attribution``. docs/directory.md describes formats and settings.
"""
