class InputError(Exception):
    """An expected problem with a user's input file: reported in one line, never as a traceback."""

    def __init__(self, path, reason: str, hint: str = ""):
        self.path = str(path)
        self.reason = reason
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        msg = f"{self.path}: {self.reason}"
        return f"{msg} ({self.hint})" if self.hint else msg


def first_line(error: Exception) -> str:
    """The first line of an exception's message (its type name when the message is empty), for one-line reports."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
