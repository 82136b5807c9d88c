"""The lead payload decodes field for field, leniently, with decoders built once."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from inbox_async import APIResponseValidationError, ImportJobPage, Lead, ProspectWithContext
from inbox_async._decode import decode, decoder_for
from inbox_async._types import Response

SEED = (Path(__file__).parent / "data" / "update-lead-response.json").read_bytes()


def _response(body: bytes, status: int = 200) -> Response:
    return Response(status, CIMultiDictProxy(CIMultiDict({"X-Request-Id": "req_1"})), body)


def test_seed_example_decodes_field_for_field() -> None:
    lead = decode(_response(SEED), Lead)
    p = lead.prospect
    assert p.platform == "twitter"
    assert p.platform_id == "<string>"
    assert p.external_id == "l44e15irdq4db30i77cgphhx"
    assert p.document_id == 858224163
    assert p.display_name == "<string>"
    assert p.username == "<string>"
    assert p.handle == "<string>"
    assert p.image == "https://pbs.twimg.com/profile_images/1954360649393295360/rwp-vVt6.jpg"
    assert p.image_normalized == p.image
    assert p.bio is not None and p.bio.startswith("Social Selling CRM")
    assert p.location == "San Francisco, CA"
    assert p.profile_url == "<string>"
    assert p.website_url == "https://inboxapp.com"
    assert p.website_domain == "inboxapp.com"
    assert p.verified == "none"
    assert p.profile_type == "personal"
    assert p.is_protected is True
    assert (p.follower_count, p.following_count, p.post_count) == (123, 123, 123)
    assert (p.engagement_count, p.listed_count) == (2613, 18)
    assert p.platform_created_at == datetime(2022, 9, 3, 17, 58, 6, tzinfo=timezone.utc)
    assert p.first_seen_at == datetime(2024, 7, 9, 14, 8, 49, tzinfo=timezone.utc)
    # The same page uses timestamps without milliseconds too.
    assert p.last_updated_at == datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc)
    assert p.last_enriched_at == datetime(2025, 11, 10, 18, 3, 16, tzinfo=timezone.utc)
    assert p.last_active_at == datetime(2025, 11, 10, 12, 0, 0, tzinfo=timezone.utc)
    assert p.source == "cached"
    assert p.is_fresh is True and p.is_stale is True
    assert p.confidence == 0.5
    assert p.account_status == "active"
    pd = p.platform_data
    assert (pd.is_verified_blue, pd.is_verified_gold, pd.is_verified_gray) == (True, True, True)
    assert pd.professional_category == "986"
    assert len(pd.url_entities) == 1
    entity = pd.url_entities[0]
    assert (entity.url, entity.expanded_url, entity.display_url) == ("<string>",) * 3
    assert entity.indices == [123, 123]
    assert pd.banner_url == ("https://pbs.twimg.com/profile_banners/1566123362161725440/1753273968")
    assert (pd.tweets_count, pd.favorites_count) == (123, 123)
    assert pd.raw_data == {}
    c = lead.context
    assert c.tags == ["<string>"]
    assert c.status_id == "df6jbw4h36..."
    assert c.valuation == 599
    assert c.notes == "This prospect is a potential customer."
    assert len(c.threads) == 1
    thread = c.threads[0]
    assert thread.id == "<string>"
    assert thread.account_link_id == "<string>"
    assert thread.last_message_timestamp == datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc)
    assert thread.created_at == thread.last_message_timestamp
    assert lead.data == {
        "custom_q5cktl47a6pqa74eu06fz89v": "Acme Corp",
        "custom_m8r2xj93hd5bk0atcw7oe4fp": "CEO",
    }


def test_datetimes_are_aware() -> None:
    lead = decode(_response(SEED), Lead)
    assert lead.prospect.platform_created_at is not None
    assert lead.prospect.platform_created_at.utcoffset() is not None


def test_unknown_fields_and_enum_values_are_tolerated() -> None:
    payload = json.loads(SEED)
    payload["prospect"]["verified"] = "platinum"
    payload["prospect"]["source"] = "telepathy"
    payload["prospect"]["brandNewField"] = {"nested": [1, 2, 3]}
    payload["context"]["assigneeId"] = "r3km7xj9wq5p2bvnhfdteoly"
    payload["somethingElse"] = True
    lead = decode(_response(json.dumps(payload).encode()), Lead)
    assert lead.prospect.verified == "platinum"
    assert lead.prospect.source == "telepathy"
    assert lead.context.assignee_id == "r3km7xj9wq5p2bvnhfdteoly"


def test_absent_fields_default_to_none_or_empty() -> None:
    lead = decode(_response(b"{}"), Lead)
    assert lead.prospect.platform_id is None
    assert lead.prospect.platform_data.url_entities == []
    assert lead.context.tags == []
    assert lead.context.threads == []
    assert lead.data == {}


def test_a_wrong_type_in_one_field_only_loses_that_field() -> None:
    payload = json.loads(SEED)
    payload["prospect"]["followerCount"] = "many"
    payload["prospect"]["platformCreatedAt"] = "not a date"
    payload["context"]["tags"] = None
    payload["context"]["threads"][0]["createdAt"] = 12
    lead = decode(_response(json.dumps(payload).encode()), Lead)
    assert lead.prospect.follower_count is None
    assert lead.prospect.platform_created_at is None
    assert lead.context.tags == []
    assert lead.context.threads[0].created_at is None
    # Everything else survived the repair.
    assert lead.prospect.following_count == 123
    assert lead.context.threads[0].account_link_id == "<string>"
    assert lead.data["custom_q5cktl47a6pqa74eu06fz89v"] == "Acme Corp"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>oops</html>",
        b'{"prospect": ',
        b"[1, 2]",
        b'"just a string"',
        b"null",
        b"0\x00",  # the wrong type first, malformed after it
        b'{"prospect": {"followerCount": "x"}} trailing',
    ],
)
def test_a_body_that_is_not_a_lead_raises_the_sdk_error(body: bytes) -> None:
    with pytest.raises(APIResponseValidationError) as info:
        decode(_response(body), Lead)
    assert info.value.status_code == 200
    assert info.value.request_id == "req_1"


def test_optional_responses_decode_null() -> None:
    assert decode(_response(b"null"), ProspectWithContext | None) is None  # type: ignore[arg-type]


def test_import_job_page_uses_camel_case_cursor() -> None:
    body = (
        b'{"data": [{"id": "abc", "status": "running", "processedCount": 5}], "nextCursor": "c2"}'
    )
    page = decode(_response(body), ImportJobPage)
    assert page.next_cursor == "c2"
    assert page.data[0].processed_count == 5


def test_decoders_are_built_once_per_type() -> None:
    assert decoder_for(Lead) is decoder_for(Lead)
    assert isinstance(decoder_for(Lead), msgspec.json.Decoder)
