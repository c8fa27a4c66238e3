"""QuickSelect and QuickChoices draw the same HTML as Django's widgets, only faster."""

from __future__ import annotations

import pytest
from django import forms
from django.test.html import parse_html

from runs.models import Orchestrator
from runs.widgets import QuickChoices, QuickRadio, QuickSelect, QuickSingleChoice

CHOICES = [("", "Any schedule"), ("1", "Checkout <nightly>"), ("2", "Login & signup")]


@pytest.mark.parametrize("value", [None, "", "2", 1])
def test_it_renders_what_django_select_renders(value):
    attrs = {"id": "id_schedule", "required": True, "class": "wide"}
    quick = QuickSelect(choices=CHOICES).render("schedule", value, attrs=attrs)
    django = forms.Select(choices=CHOICES).render("schedule", value, attrs=attrs)
    assert parse_html(quick) == parse_html(django)


def test_it_escapes_labels_and_marks_the_chosen_option():
    html = QuickSelect(choices=CHOICES).render("schedule", "1")
    assert "Checkout &lt;nightly&gt;" in html and "Login &amp; signup" in html
    assert '<option value="1" selected>' in html


def test_a_pair_with_no_value_is_a_note_among_the_options_that_cannot_be_chosen():
    widget = QuickSelect()
    widget.pairs = lambda: [("", "Any agent"), (1, "win-1"), (None, "Older agents: <elsewhere>")]
    html = widget.render("agent", None)
    assert "<option disabled>Older agents: &lt;elsewhere&gt;</option>" in html


def test_a_model_choice_field_draws_its_queryset_with_it(db):
    Orchestrator.objects.create(kind="leapwork", name="lab", base_url="http://lab.example")
    field = forms.ModelChoiceField(
        Orchestrator.objects.all(), to_field_name="name", widget=QuickSelect
    )
    html = field.widget.render("orchestrator", "lab")
    assert '<option value="lab" selected>lab</option>' in html


@pytest.mark.parametrize("value", [None, [], ["2"], [1, "2"]])
@pytest.mark.parametrize("attrs", [{"id": "id_cases"}, {}, {"id": "id_cases", "class": "wide"}])
def test_it_renders_what_django_checkboxes_render(value, attrs):
    quick = QuickChoices(choices=CHOICES).render("cases", value, attrs=attrs)
    django = forms.CheckboxSelectMultiple(choices=CHOICES).render("cases", value, attrs=attrs)
    assert parse_html(quick) == parse_html(django)


def test_the_single_choice_draws_radio_buttons_and_checks_the_one_picked():
    html = QuickSingleChoice(choices=CHOICES).render("cases", [2], attrs={"id": "id_cases"})
    assert '<input type="radio" name="cases" value="2" id="id_cases_2" checked>' in html
    assert html.count('type="radio"') == 3 and html.count("checked") == 1


@pytest.mark.parametrize("data", [{}, {"scope": "2"}, {"scope": "9"}])
def test_the_radio_of_one_choice_draws_and_reads_what_django_radios_do(data):
    def form(widget):
        class Form(forms.Form):
            scope = forms.ChoiceField(choices=CHOICES[1:], widget=widget, initial="1")

        return Form(data or None)

    quick, django = form(QuickRadio), form(forms.RadioSelect)
    assert parse_html(str(quick["scope"])) == parse_html(str(django["scope"]))
    assert "required" in str(quick["scope"])  # a required choice, as RadioSelect marks it
    if data:
        assert quick.is_valid() == django.is_valid()
        assert quick.cleaned_data == django.cleaned_data


def test_the_checkboxes_draw_pairs_read_when_drawn_instead_of_their_choices():
    read = []

    def pairs():
        read.append(1)
        return [(7, "Agent <7>")]

    widget = QuickChoices(choices=[(1, "never drawn")])
    widget.pairs = pairs
    html = widget.render("agents", [7], attrs={"id": "id_agents"})
    assert read == [1] and "never drawn" not in html
    assert 'value="7" id="id_agents_0" checked>' in html and "Agent &lt;7&gt;" in html
