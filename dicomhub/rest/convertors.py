"""Path convertors for routes that exist at several levels (registered on import)."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class _Choice(Convertor[str]):
    def __init__(self, regex: str) -> None:
        self.regex = regex

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


#: ``{level:levels}``: any of the four levels.
register_url_convertor("levels", _Choice("patients|studies|series|instances"))
#: ``{level:upper_levels}``: the levels that have instances below them.
register_url_convertor("upper_levels", _Choice("patients|studies|series"))
