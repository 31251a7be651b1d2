"""AWS option values in the spellings of AWS's generated configs and of strongSwan.

AWS's generated configs write algorithms as in its XML (docs/aws.md §6.1):
`aes-128-cbc`, `sha1`, `hmac-sha1-96`, `group2`. strongSwan's proposal keywords
are its own (`aes128`, `sha256`, `modp2048`, `ecp256`, `aes128gcm16`, `prfsha256`).
"""

from __future__ import annotations

XML_ENCRYPTION = {"AES128": "aes-128-cbc", "AES256": "aes-256-cbc",
                  "AES128-GCM-16": "aes-128-gcm-16", "AES256-GCM-16": "aes-256-gcm-16"}
XML_IKE_INTEGRITY = {"SHA1": "sha1", "SHA2-256": "sha2-256", "SHA2-384": "sha2-384", "SHA2-512": "sha2-512"}
# ESP integrity: the truncated HMAC of RFC 2404 / RFC 4868
XML_ESP_INTEGRITY = {"SHA1": "hmac-sha1-96", "SHA2-256": "hmac-sha256-128", "SHA2-384": "hmac-sha384-192",
                     "SHA2-512": "hmac-sha512-256"}

SWAN_ENCRYPTION = {"AES128": "aes128", "AES256": "aes256", "AES128-GCM-16": "aes128gcm16",
                   "AES256-GCM-16": "aes256gcm16"}
SWAN_INTEGRITY = {"SHA1": "sha1", "SHA2-256": "sha256", "SHA2-384": "sha384", "SHA2-512": "sha512"}
SWAN_PRF = {"SHA1": "prfsha1", "SHA2-256": "prfsha256", "SHA2-384": "prfsha384", "SHA2-512": "prfsha512"}
# IANA DH group numbers (RFC 7296, RFC 3526, RFC 5903, RFC 5114) as strongSwan names them
SWAN_DH = {2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072", 16: "modp4096", 17: "modp6144",
           18: "modp8192", 19: "ecp256", 20: "ecp384", 21: "ecp521", 22: "modp1024s160",
           23: "modp2048s224", 24: "modp2048s256"}


def is_gcm(encryption: str) -> bool:
    return encryption.endswith("-GCM-16")
