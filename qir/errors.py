"""The one exception type that reaches users: a clear, single-line message, no traceback."""


class QirError(Exception):
    """Bad input or an impossible request. The message names the file/layer and the fix."""

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)

    def located(self, where: str) -> "QirError":
        """The same error, prefixed with a location (file, layer) if it has none yet."""
        if self.where is None:
            return QirError(str(self), where=where)
        return self
