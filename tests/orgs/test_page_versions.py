"""An objective page's version (``orgs.versions``, part of the key of the page's cached
sections) is kept an hour after it was last set, bumped or first read: the cache holds a key per
objective read or written lately, not one per objective ever seen. When it lapses, the page
gets a new version, so the sections stored under the old one are never read again. The
organization's versions do not lapse."""

import pytest
from django.core.cache import cache
from django.core.cache.backends import locmem

from orgs import versions

ORG, PAGE, OTHER_PAGE = 41, 7, 8


@pytest.fixture
def clock(settings, monkeypatch):
    """A cache of its own (in memory, whatever the suite uses) whose clock the test moves."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "page-versions"}}
    monkeypatch.setattr(versions, "_skip_until", 0.0)  # the cache is up
    now = [1_000_000.0]
    monkeypatch.setattr(locmem.time, "time", lambda: now[0])
    cache.clear()
    yield now
    cache.clear()


def _parts(org_id, page):
    """(the organization's part, the page's part) of the page's version."""
    organization, _, page_part = versions.version(org_id, versions.PAGE_TOPIC,
                                                  page=page).rpartition("-")
    return organization, page_part


def test_a_page_version_lapses_an_hour_after_it_was_first_read(clock):
    organization, page = _parts(ORG, PAGE)
    assert page and organization
    clock[0] += versions.PAGE_VERSION_TTL - 1
    assert _parts(ORG, PAGE) == (organization, page)  # reading it does not keep it longer
    clock[0] += 2
    organization_now, renewed = _parts(ORG, PAGE)
    assert organization_now == organization and renewed != page
    assert _parts(ORG, PAGE)[1] == renewed  # the new one is kept in turn


def test_a_bump_moves_the_page_version_and_keeps_it_another_hour(clock):
    _, first = _parts(ORG, PAGE)
    _, other = _parts(ORG, OTHER_PAGE)
    clock[0] += versions.PAGE_VERSION_TTL / 2
    versions.bump_pages(ORG, [PAGE])
    organization, bumped = _parts(ORG, PAGE)
    assert bumped != first
    assert _parts(ORG, OTHER_PAGE)[1] == other  # another page of the organization keeps its own
    clock[0] += versions.PAGE_VERSION_TTL - 1  # an hour and a half after the first read
    assert _parts(ORG, PAGE) == (organization, bumped)
    assert _parts(ORG, OTHER_PAGE)[1] != other  # not bumped: lapsed


def test_the_organizations_versions_do_not_lapse(clock):
    organization, _ = _parts(ORG, PAGE)
    clock[0] += 30 * 24 * 3600
    assert _parts(ORG, PAGE)[0] == organization
