"""Lead endpoints end to end against the fake server."""

from __future__ import annotations

import msgspec
import pytest

from inbox_async import AddLeadsResult, InboxClient, Lead, NotFoundError, RemoveLeadsResult
from inbox_async.testing import FakeInboxServer

from .conftest import COL_COMPANY, COL_TITLE, LEADS, lead_ids


async def test_update_sets_values_and_returns_the_lead(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    lead = await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme", COL_TITLE: "CEO"})
    assert isinstance(lead, Lead)
    assert lead.prospect.platform_id == LEADS[0]
    assert lead.data == {COL_COMPANY: "Acme", COL_TITLE: "CEO"}
    assert server.lead_data(list_id, LEADS[0]) == {COL_COMPANY: "Acme", COL_TITLE: "CEO"}


async def test_none_clears_a_value_and_is_sent_as_null(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme", COL_TITLE: "CEO"})
    lead = await client.leads.update(list_id, LEADS[0], {COL_TITLE: None})
    assert lead.data == {COL_COMPANY: "Acme"}
    assert server.lead_data(list_id, LEADS[0]) == {COL_COMPANY: "Acme"}
    last = server.requests[-1]
    assert last.method == "PATCH"
    assert msgspec.json.decode(last.body) == {"data": {COL_TITLE: None}}
    assert last.headers["Content-Type"].startswith("application/json")
    assert last.headers["Authorization"] == "Bearer test-token"


async def test_numbers_and_booleans_go_through_as_given(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    await client.leads.update(list_id, LEADS[1], {COL_COMPANY: 12.5, COL_TITLE: True})
    assert server.lead_data(list_id, LEADS[1]) == {COL_COMPANY: 12.5, COL_TITLE: True}


async def test_an_int_platform_id_is_accepted(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    await client.leads.update(list_id, int(LEADS[2]), {COL_COMPANY: "Int Inc"})
    assert server.lead_data(list_id, LEADS[2]) == {COL_COMPANY: "Int Inc"}


async def test_a_lead_not_in_the_list_is_not_found(client: InboxClient, list_id: str) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.leads.update(list_id, "999", {COL_COMPANY: "x"})
    assert info.value.status_code == 404
    assert info.value.code == "LEAD_NOT_FOUND"
    assert info.value.request_id


@pytest.mark.parametrize(
    ("args", "error", "names"),
    [
        (("L1", "1", {}), ValueError, "list_id"),
        (("a/b", "1", {}), ValueError, "list_id"),
        ((123, "1", {}), TypeError, "list_id"),
        (("abc", "", {}), ValueError, "platform_id"),
        (("abc", None, {}), TypeError, "platform_id"),
        (("abc", True, {}), TypeError, "platform_id"),
        (("abc", "1", [("k", "v")]), TypeError, "data"),
        (("abc", "1", {1: "v"}), TypeError, "data"),
        (("abc", "1", {"": "v"}), ValueError, "data"),
        (("abc", "1", {COL_COMPANY: float("nan")}), ValueError, "data"),
        (("abc", "1", {COL_COMPANY: object()}), TypeError, "data"),
        (("abc", "1", {COL_COMPANY: ["a"]}), TypeError, "data"),
        # Past Python's int-to-str digit limit: msgspec could not encode it.
        (("abc", "1", {COL_COMPANY: 10**5000}), ValueError, "data"),
        (("abc", "1", {COL_COMPANY: -(10**5000)}), ValueError, "data"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_sent(
    client: InboxClient,
    server: FakeInboxServer,
    args: tuple[object, object, object],
    error: type[Exception],
    names: str,
) -> None:
    with pytest.raises(error, match=names):
        await client.leads.update(*args)  # type: ignore[arg-type]
    assert server.requests == []


@pytest.mark.parametrize("options", [{"timeout": 0}, {"max_retries": -1}, {"timeout": "1"}])
async def test_bad_per_call_options_are_refused_before_sending(
    client: InboxClient, server: FakeInboxServer, list_id: str, options: dict[str, object]
) -> None:
    with pytest.raises((ValueError, TypeError), match=next(iter(options))):
        await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "x"}, **options)  # type: ignore[arg-type]
    assert server.requests == []


@pytest.mark.parametrize("platform_id", ["../x", "a/b", "..", ".", "x?y=1", "a#b", "%2F", "é"])
async def test_path_parameters_cannot_change_the_endpoint(
    client: InboxClient, server: FakeInboxServer, list_id: str, platform_id: str
) -> None:
    server.add_leads(list_id, [platform_id])
    lead = await client.leads.update(list_id, platform_id, {COL_COMPANY: "safe"})
    assert lead.data == {COL_COMPANY: "safe"}
    assert server.lead_data(list_id, platform_id) == {COL_COMPANY: "safe"}
    path = server.requests[-1].path
    assert path.startswith(f"/api/v1/lists/{list_id}/leads/")
    assert path.count("/") == 6
    assert server.requests[-1].query == ""


@pytest.mark.slow
async def test_add_splits_into_requests_of_2000_and_merges(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    new_ids = lead_ids(4500, 10_000_000)
    result = await client.leads.add(list_id, [LEADS[0], *new_ids, "not-a-number"])
    assert isinstance(result, AddLeadsResult)
    assert result.skipped == [LEADS[0]]
    assert result.added == new_ids
    assert result.failed == ["not-a-number"]
    posts = [r for r in server.requests if r.method == "POST"]
    sizes = [len(msgspec.json.decode(r.body)["platformIds"]) for r in posts]
    assert sizes == [2000, 2000, 502]
    assert all(server.has_lead(list_id, pid) for pid in new_ids)


@pytest.mark.slow
async def test_remove_splits_and_sums(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    extra = lead_ids(2500, 20_000_000)
    server.add_leads(list_id, extra)
    result = await client.leads.remove(list_id, [*extra, "123"])
    assert isinstance(result, RemoveLeadsResult)
    assert result.removed == 2500
    assert len([r for r in server.requests if r.method == "DELETE"]) == 2
    assert not server.has_lead(list_id, extra[0])


async def test_add_nothing_sends_nothing(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    assert await client.leads.add(list_id, []) == AddLeadsResult()
    assert await client.leads.remove(list_id, iter(())) == RemoveLeadsResult()
    assert server.requests == []


async def test_a_string_is_not_taken_for_a_list_of_ids(client: InboxClient, list_id: str) -> None:
    with pytest.raises(TypeError, match="platform_ids"):
        await client.leads.add(list_id, "44196397")
    with pytest.raises(TypeError, match=r"platform_ids\[1\]"):
        await client.leads.remove(list_id, ["1", None])  # type: ignore[list-item]
