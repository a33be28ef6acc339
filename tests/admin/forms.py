"""Read an admin page's form as a browser would submit it, so tests post exactly what a user
could (hidden inputs, inline management forms, selected options)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _FormParser(HTMLParser):
    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self._text: list[str] = []

    def _add(self, name: str | None, value: str) -> None:
        if name and "__prefix__" not in name:
            self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
            return
        if not self.inside:
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self._add(attrs.get("name"), attrs.get("value") or "on")
                return
            self._add(attrs.get("name"), attrs.get("value", ""))
        elif tag == "select":
            self._select = attrs.get("name")
            self._select_first = None
            self._select_chosen = False
        elif tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in attrs:
                self._add(self._select, value)
                self._select_chosen = True
        elif tag == "textarea":
            self._textarea = attrs.get("name")
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            if not self._select_chosen and self._select_first is not None:
                self._add(self._select, self._select_first)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self._add(self._textarea, "".join(self._text).removeprefix("\n"))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)


def form_data(response: Any, form_id: str) -> dict[str, Any]:
    """The fields of `<form id=form_id>` in the response, as a dict for `client.post`."""
    parser = _FormParser(form_id)
    parser.feed(response.content.decode())
    assert parser.data, f"no form #{form_id} in the page"
    return {k: v if len(v) > 1 else v[0] for k, v in parser.data.items()}


def add_inline_row(data: dict[str, Any], prefix: str, **fields: Any) -> dict[str, Any]:
    """Append a new row to the inline formset `prefix` (bumping its TOTAL_FORMS)."""
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    data[f"{prefix}-{index}-id"] = ""
    for name, value in fields.items():
        data[f"{prefix}-{index}-{name}"] = "" if value is None else str(value)
    return data


def page_errors(response: Any) -> dict[str, Any]:
    """The form and inline errors of an admin change page response (for assertion messages)."""
    context = response.context
    if context is None or "adminform" not in context:
        return {"status": response.status_code}
    errors: dict[str, Any] = {"form": dict(context["adminform"].form.errors)}
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        errors[formset.prefix] = {
            "rows": formset.errors,
            "non_form": list(formset.non_form_errors()),
        }
    return errors
