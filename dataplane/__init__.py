"""vgw's ESP data path: it knows nothing of IKE, it is handed SPIs and keys.

Read in the order a packet travels.  Inbound:

    sockets   (OutsideSockets: UDP 4500 with GRO, raw ESP)
    receive   (Receiver: read a batch, SPI lookup, the one deliver path)
    esp       (EspSa; esp_gcm/esp_cbc open_spans: ICV, replay window, padding,
               selectors; esp_format: the wire format's shared pieces)
    binding   (TunBinding: the tunnel's TUN device and its SAs)
    offload   (Gro: coalesce into TUN super-packets) -> the TUN, the kernel

Outbound: the TUN -> send (Sender.pump_tun; offload.tso_split) -> esp
(EspSa.seal_batch) -> send's one GSO run builder -> sockets -> the wire.

``datapath`` (DataPath) wires these together and is what the daemon uses;
``accounting`` counts drops and logs them rate-limited; ``limits`` holds the token
buckets of a tunnel's emulated AWS limits (send and receive charge them per batch).  Beside the path: ``replay``
(anti-replay window, RFC 4303 §3.4.3), ``encap`` (UDP encapsulation on port 4500,
RFC 3948), ``selectors`` (inbound traffic selector check, RFC 4301 §5.2), ``tun``
(TUN devices).  Importing this package imports none of them, so ``dataplane.esp``
stays usable without pyroute2.
"""
