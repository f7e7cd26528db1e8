"""The SFTP landing area: one chroot account per agent (``layout``), its system user (``users``)."""
