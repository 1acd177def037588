"""``subgroups inbound``: the SMTP listener for the store's inbound domain (aiosmtpd).

``server`` answers SMTP and checks each RCPT address; ``writer`` applies the
accepted messages in batches, one committed transaction each, before any of
them is answered 250. What each address and message means is the core's
(``app.core.inbound``).
"""
