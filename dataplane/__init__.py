"""vgw's ESP data path: it knows nothing of IKE, it is handed SPIs and keys.

Modules: ``esp`` (EspSa: ESP tunnel mode, RFC 4303, AES-GCM-16 and AES-CBC+HMAC),
``replay`` (anti-replay window, RFC 4303 §3.4.3), ``encap`` (UDP encapsulation on
port 4500, RFC 3948), ``tun`` (TUN devices), ``loop`` (PacketLoop: TUN <-> sockets).
Importing this package imports none of them, so ``dataplane.esp`` stays usable
without pyroute2.
"""
