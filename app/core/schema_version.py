"""The schema version this subgroups writes, without the data layer.

``migrations`` has one step per version and refuses to load if its last step
and this number differ; the console's first look (``first_look``) reads a store
at once only when it is at this version.
"""

LATEST_VERSION = 17
