"""The history's and the failures' filters at the size that hurts: a cluster's workers come
and go by the thousand, and each page offers only the agents seen most recently."""

from __future__ import annotations

import re

import pytest

from runs.filters import AGENTS_OFFERED
from tests.factories import make_agents

pytestmark = pytest.mark.django_db

NOTE = "Older agents: search the Agents page"


def agent_select(html: str) -> str:
    return re.search(r'<select[^>]*name="agent".*?</select>', html, re.S).group(0)


def offered(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<option value="(\d+)"', agent_select(html))]


@pytest.mark.parametrize("page", ["/runs/", "/failures/"])
def test_the_agent_filter_offers_the_agents_seen_most_recently_and_says_where_the_rest_are(
    viewer_client, page
):
    agents = make_agents(AGENTS_OFFERED + 30)

    html = viewer_client.get(page).content.decode()

    assert offered(html) == [a.pk for a in agents[:AGENTS_OFFERED]]  # by title: the same order
    assert f"<option disabled>{NOTE}</option>" in agent_select(html)


def test_an_older_agent_chosen_is_offered_too_and_its_runs_are_filtered(viewer_client):
    agents = make_agents(AGENTS_OFFERED + 30)
    oldest = agents[-1]

    response = viewer_client.get("/runs/", {"agent": oldest.pk})

    html = response.content.decode()
    assert oldest.pk in offered(html) and len(offered(html)) == AGENTS_OFFERED + 1
    assert f'<option value="{oldest.pk}" selected>{oldest.title}</option>' in html


def test_a_few_agents_are_all_offered_with_no_note(viewer_client):
    agents = make_agents(3)

    html = viewer_client.get("/runs/").content.decode()

    assert sorted(offered(html)) == sorted(a.pk for a in agents) and NOTE not in html


@pytest.mark.parametrize("chosen", ["99999999999999999999", "-1", "abc", "4 OR 1=1"])
def test_an_agent_that_is_no_id_is_ignored(viewer_client, chosen):
    make_agents(3)

    response = viewer_client.get("/runs/", {"agent": chosen})

    assert response.status_code == 200 and len(offered(response.content.decode())) == 3
