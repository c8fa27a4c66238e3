"""Form widgets that render fast where a page draws many choices."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from html import escape
from typing import Any

from django import forms
from django.forms.utils import flatatt
from django.utils.safestring import SafeString, mark_safe


def model_pairs(field: forms.ModelChoiceField, label: str) -> Callable[[], list[tuple[Any, str]]]:
    """A model choice's options as (value, label) pairs, for QuickSelect's or QuickChoices'
    `pairs`: read when the widget is drawn (never for a fragment that leaves the form out),
    as rows, not model instances (hundreds of schedules or forty agents built as instances
    cost more than the page's own query); with the empty option when the field has one."""
    value = field.to_field_name or "pk"

    @functools.cache  # read once per form: the required check and the drawing both look
    def pairs() -> list[tuple[Any, str]]:
        return [*_empty_option(field), *field.queryset.values_list(value, label)]

    return pairs


def known_pairs(
    field: forms.ModelChoiceField, known: list[tuple[Any, str]]
) -> Callable[[], list[tuple[Any, str]]]:
    """Like model_pairs, for options the page has read already: `known` (value, label) pairs,
    in order, with the empty option when the field has one."""
    return lambda: [*_empty_option(field), *known]


def _empty_option(field: forms.ModelChoiceField) -> list[tuple[Any, str]]:
    """The field's empty option as a pair, or none when it has no empty label."""
    return [] if field.empty_label is None else [("", field.empty_label)]


class _Pairs:
    """`pairs`, when set, is a callable of (value, label) pairs that a Quick widget draws
    instead of its `choices` (which normalize them on every look), e.g. model_pairs."""

    pairs: Callable[[], Iterable[tuple[Any, Any]]] | None = None
    choices: Iterable[tuple[Any, Any]]

    def drawn_choices(self) -> Iterable[tuple[Any, Any]]:
        return self.pairs() if self.pairs else self.choices


class QuickSelect(_Pairs, forms.Select):
    """A `<select>` built in Python: the same HTML as `forms.Select` for flat choices, without a
    template render per `<option>` (a history filter offers hundreds of schedules and agents,
    which otherwise cost more than the page's queries)."""

    def render(
        self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None
    ) -> SafeString:
        selected = {str(v) for v in self.format_value(value)}
        final_attrs = {"name": name, **self.build_attrs(self.attrs, attrs)}
        # html.escape straight away: format_html per option costs more than the page's query.
        options = "\n".join(
            f"<option disabled>{escape(str(label))}</option>"
            if option is None  # a note among the options (what else there is, and where)
            else f'<option value="{escape(str(option))}"'
            f"{' selected' if str(option) in selected else ''}>{escape(str(label))}</option>"
            for option, label in self.drawn_choices()
        )
        return mark_safe(f"<select{flatatt(final_attrs)}>\n{options}\n</select>")

    def use_required_attribute(self, initial: Any) -> bool:
        # An optional filter never gets `required`: skip Select's look at its first choice,
        # which draws every option (lazy choices are read anew on each look).
        return self.is_required and super().use_required_attribute(initial)


class QuickChoices(_Pairs, forms.CheckboxSelectMultiple):
    """Checkboxes built in Python: the same HTML as `forms.CheckboxSelectMultiple` for flat
    choices, without a template render per choice (a rerun form offers a page of cases and
    every agent, which otherwise cost more than the run page's queries)."""

    def render(
        self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None
    ) -> SafeString:
        final_attrs = self.build_attrs(self.attrs, attrs)
        ident, css = final_attrs.get("id", ""), final_attrs.get("class", "")
        # Each input carries the widget's attributes, its id numbered as Django numbers it.
        rest = flatatt({k: v for k, v in final_attrs.items() if k != "id"})
        checked = {str(v) for v in self.format_value(value)}
        kind, field = self.input_type, escape(name)
        options = "".join(
            "<div>\n    <label"
            + (f' for="{escape(ident)}_{index}"' if ident else "")
            + f'><input type="{kind}" name="{field}" value="{escape(str(option))}"'
            + (f' id="{escape(ident)}_{index}"' if ident else "")
            + f"{rest}{' checked' if str(option) in checked else ''}>\n {escape(str(label))}"
            + "</label></div>"
            for index, (option, label) in enumerate(self.drawn_choices())
        )
        outer = flatatt({k: v for k, v in (("id", ident), ("class", css)) if v})
        return mark_safe(f"<div{outer}>{options}\n</div>")


class QuickSingleChoice(QuickChoices):
    """Radio buttons for a multiple-choice field where exactly one may be picked (a task)."""

    input_type = "radio"


class QuickRadio(QuickSingleChoice):
    """Radio buttons for a single choice, drawn as QuickChoices draws (`forms.RadioSelect`
    renders a template per option); a required choice marks its inputs required."""

    # One value, read as RadioSelect reads it (the checkboxes it draws like read a list).
    allow_multiple_selected = False
    value_omitted_from_data = forms.RadioSelect.value_omitted_from_data

    def use_required_attribute(self, initial: Any) -> bool:
        return not self.is_hidden
