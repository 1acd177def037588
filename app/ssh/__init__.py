"""``subgroups ssh``: the console for registered admins over SSH (asyncssh).

``server`` authenticates (public keys only: the login name must be an admin
and the key theirs) and ``console_pty`` gives each session its own console
process on a pseudo-terminal of the client's size, acting as that admin.
"""
