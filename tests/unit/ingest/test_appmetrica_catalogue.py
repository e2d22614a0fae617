"""The documented field catalogue (ingest/appmetrica/fields.yml) and what the client requests against it."""

from __future__ import annotations

import pytest

from ingest.appmetrica.catalogue import (
    CatalogueError,
    is_custom_attribute_name,
    load_catalogue,
    parse_catalogue,
    resource_doc,
)
from ingest.appmetrica.resources import RESOURCES, requested_fields

DOCUMENTED_RESOURCES = {
    "events",
    "sessions_starts",
    "installations",
    "profiles_v2",
    "crashes",
    "errors",
    "revenue_events",
    "ad_revenue_events",
    "push_tokens",
    "deeplinks",
    "ecommerce_events",
    "clicks",
    "postbacks",
}


def test_catalogue_has_all_thirteen_documented_resources_with_their_pages():
    catalogue = load_catalogue()
    assert set(catalogue) == DOCUMENTED_RESOURCES
    for doc in catalogue.values():
        assert doc.fields, doc.name
        assert doc.doc_urls and all(u.startswith("https://appmetrica.yandex.") for u in doc.doc_urls), doc.name
        assert doc.endpoint.startswith(f"/logs/v1/export/{doc.name}."), doc.name
        assert doc.source, doc.name


def test_catalogue_is_read_once():
    assert load_catalogue() is load_catalogue()


def test_documented_facts_the_client_depends_on():
    events = resource_doc("events")
    assert events.field("event_timestamp").type == "integer"
    assert events.field("os_name").values == ("ios", "android", "windows")
    assert not events.is_documented("appmetrica_sdk_version")
    sessions = resource_doc("sessions_starts")
    assert not sessions.is_documented("installation_id")
    assert sessions.is_documented("original_device_model")
    assert "original_device_model" not in sessions.quick_copy_fields  # only in the field table, not the quick list
    installs = resource_doc("installations")
    assert installs.undocumented(["device_ipv6", "install_ipv6", "click_ipv6"]) == ("device_ipv6",)
    assert installs.field("fingerprint_method").uncertain
    assert not resource_doc("push_tokens").takes_dates
    profiles = resource_doc("profiles_v2")
    assert profiles.allows_custom_attributes
    assert not resource_doc("events").allows_custom_attributes
    assert profiles.field("appmetrica_sdk_version").type == "integer"
    assert not profiles.is_documented("custom_attributes")


def test_quick_copy_order_is_the_docs_order():
    assert resource_doc("events").quick_copy_fields[:4] == (
        "event_datetime",
        "event_json",
        "event_name",
        "event_receive_datetime",
    )
    assert resource_doc("events").quick_copy_fields[-1] == "application_id"


def test_unknown_resource_names_the_documented_ones():
    with pytest.raises(KeyError, match="profiles_v2"):
        resource_doc("profiles")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resources: {}\n", None),
        ("x: 1\n", "top-level 'resources'"),
        (
            "resources:\n  r: {title: T, source: s, doc_urls: [u], endpoint: e, takes_dates: true,"
            " fields: [{name: a, type: float}]}\n",
            r"resources\.r\.fields\.a\.type",
        ),
        (
            "resources:\n  r: {title: T, source: s, doc_urls: [u], endpoint: e, takes_dates: true,"
            " fields: [{name: a, type: string}, {name: a, type: string}]}\n",
            "listed twice: a",
        ),
        ("resources:\n  r: {title: T}\n", r"resources\.r: missing source"),
        (
            "resources:\n  r: {title: T, source: s, doc_urls: [u], endpoint: e, takes_dates: true, field_count: 2,"
            " fields: [{name: a, type: string}]}\n",
            "field_count is 2",
        ),
    ],
)
def test_malformed_catalogue_names_the_entry(text, message):
    if message is None:
        assert parse_catalogue(text) == {}
        return
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue(text)


@pytest.mark.parametrize("name", ["plan", "level", "_x", "Tier2"])
def test_custom_attribute_names_are_plain_identifiers(name):
    assert is_custom_attribute_name(name)


@pytest.mark.parametrize("name", ["", "2plan", "plan,level", "a b", "plan=1", "план"])
def test_other_custom_attribute_names_are_refused(name):
    assert not is_custom_attribute_name(name)


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_every_requested_field_is_documented_for_its_resource(resource):
    doc = resource_doc(resource)
    requested = RESOURCES[resource].fields
    assert len(set(requested)) == len(requested), f"{resource}: a field is requested twice"
    assert doc.undocumented(requested) == (), f"{resource} requests fields the Logs API docs do not list"


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_custom_attributes_are_requested_only_where_the_docs_allow_them(resource):
    res = RESOURCES[resource]
    assert res.takes_custom_attributes == resource_doc(resource).allows_custom_attributes
    with_attributes = requested_fields(res, ("plan", "level"))
    assert with_attributes == res.fields + (("plan", "level") if res.takes_custom_attributes else ())
