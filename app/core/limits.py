"""The product's fixed limits, importable without the data layer (the console
draws the Groups gauge before SQLAlchemy is loaded)."""

# At most this many groups are active at once (archive one to make room).
MAX_ACTIVE_GROUPS = 50
