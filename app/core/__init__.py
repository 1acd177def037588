"""The domain: models, store and services. Never imports textual."""
