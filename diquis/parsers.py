"""The API's JSON parser: DRF's, with a plain message where Python's own would show through."""

import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError

NUMBER_TOO_LONG = "JSON parse error - a number in the body has too many digits."


class JSONParser(parsers.JSONParser):
    """A number of more than 4,300 digits makes `json` raise Python's int-conversion error, whose text
    (about `sys.set_int_max_str_digits`) DRF would quote to the client; a malformed body keeps DRF's line."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError as error:
            if isinstance(error.__context__, ValueError) and not isinstance(error.__context__, json.JSONDecodeError):
                raise ParseError(NUMBER_TOO_LONG) from None
            raise
