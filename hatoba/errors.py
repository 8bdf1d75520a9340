"""Error types shared by the daemon's layers; the API maps each to Docker's HTTP status."""


class HatobaError(Exception):
    """Base error: its message is what the user sees; status is the HTTP code the API answers with."""

    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidParameter(HatobaError):
    status = 400


class Forbidden(HatobaError):
    status = 403


class NotFound(HatobaError):
    status = 404


class Conflict(HatobaError):
    status = 409


class NotModified(HatobaError):
    status = 304


class SystemError_(HatobaError):
    status = 500
