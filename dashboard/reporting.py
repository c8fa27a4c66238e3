"""The error report's filter: it masks credentials in every frame, not only where Django was told.

`sensitive_variables` and `sensitive_post_parameters` name the credential where Django code
handles it (the connect view, the admin, the services). Below them the vendor clients hold it
too (a header, Orkes' keyId and keySecret, a token) and import no Django, so their frames are
masked by the names of their variables and of the keys of dicts they hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

SECRET_WORDS = r"credential|secret|token|passw(?:or)?d|authorization|access_?key|api_?key"
SECRET_NAMES = re.compile(rf"{SECRET_WORDS}|^key_?id$|cookie|signature", re.IGNORECASE)
# A JSON body already encoded (Orkes' token request) names its secret in a key.
SECRET_IN_JSON = re.compile(
    rf'("[^"]*(?:{SECRET_WORDS})[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE
)


class CredentialFilter(SafeExceptionReporterFilter):
    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        if not self.is_active(request):
            return variables
        return [(name, self._masked(name, value)) for name, value in variables]

    def _masked(self, name: Any, value: Any) -> Any:
        if isinstance(name, str) and SECRET_NAMES.search(name):
            return self.cleansed_substitute
        if isinstance(value, Mapping):
            return {key: self._masked(key, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._masked("", item) for item in value]
        if isinstance(value, tuple):
            return tuple(self._masked("", item) for item in value)
        if isinstance(value, str):
            return SECRET_IN_JSON.sub(rf'\1"{self.cleansed_substitute}"', value)
        if isinstance(value, bytes):
            return self._masked(name, value.decode("latin-1")).encode("latin-1")
        return value
