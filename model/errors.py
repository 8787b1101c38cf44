"""The one exception type the model layer raises for problems a user can fix."""


class ModelError(Exception):
    """A problem with a model bundle or its use; the message says how to fix it."""
