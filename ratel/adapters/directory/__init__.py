"""Directories of staff: the local one (ratel's staff table) and, with its
issue, Active Directory / LDAP."""
