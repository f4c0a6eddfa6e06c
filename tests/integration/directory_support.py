"""Containers wired to the real directory servers, for the directory tests."""

from __future__ import annotations

from typing import Any

from directory_servers import SERVICE_PASSWORD, Samba, Slapd

from ratel.config import DirectoryKind, DirectoryTls, Settings
from ratel.container import Container, build_container


def samba_settings(database_url: str, samba: Samba, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "directory": DirectoryKind.LDAP,
        "directory_urls": (samba.ldaps_url,),
        "directory_base_dn": samba.base_dn,
        "directory_bind_dn": samba.service_upn,
        "directory_bind_password": SERVICE_PASSWORD,
        "directory_role_groups": samba.role_groups,
        "directory_ca_file": samba.ca_file,
        "directory_tls_server_name": samba.tls_server_name,
        "directory_connect_timeout": 2.0,
        "directory_receive_timeout": 1,
    }
    return Settings(**{**values, **changes})


def slapd_settings(database_url: str, slapd: Slapd, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "directory": DirectoryKind.LDAP,
        "directory_urls": (slapd.url,),
        "directory_base_dn": slapd.base_dn,
        "directory_bind_dn": slapd.service_dn,
        "directory_bind_password": SERVICE_PASSWORD,
        "directory_role_groups": slapd.role_groups,
        "directory_login_attribute": "uid",
        "directory_user_filter": "(objectClass=inetOrgPerson)",
        "directory_expiry_attribute": "shadowExpire",
        "directory_tls": DirectoryTls.PLAIN,
        "directory_connect_timeout": 2.0,
        "directory_receive_timeout": 1,
    }
    return Settings(**{**values, **changes})


def container_for(settings: Settings) -> Container:
    return build_container(settings)
