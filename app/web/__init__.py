"""The landing page server (``subgroups landing``): DESIGN.md's preference center over HTTP.

``server`` is the Starlette app (routes, errors), ``pages`` the HTML,
``forms`` the request bodies, ``serving`` the socket, uvicorn and the access
log. The domain work is ``app.core.landing``'s, shared with the console.
"""
