"""The IKE exchanges, one module each, both roles (RFC 7296 §1.2-§1.5), as
strongSwan keeps one task per exchange: ike_init (IKE_SA_INIT), ike_auth
(IKE_AUTH, with authenticate: PSK or certificates), create_child_sa
(CREATE_CHILD_SA: which kind, and the CHILD SA rekey), ike_rekey (the IKE SA
rekey) and informational (DELETE, DPD, notifies). base holds what every request
vgw sends provides. Each module also holds the timer actions that start its
exchange (registered by ikecore.endpoint).
"""
