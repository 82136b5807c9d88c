"""Prospects: the X profile behind a lead, and the team's CRM context on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from ._base import Body, Model

__all__ = [
    "Context",
    "ContextUpdate",
    "PlatformData",
    "Prospect",
    "ProspectWithContext",
    "Thread",
    "UrlEntity",
]


class UrlEntity(Model):
    """A link in the profile's bio or website field."""

    url: str | None = None
    """The shortened URL as it appears on the platform."""
    expanded_url: str | None = None
    """The URL it points to."""
    display_url: str | None = None
    """The URL as the platform displays it."""
    indices: list[int] = msgspec.field(default_factory=list)
    """Start and end offsets of the link in the text."""


class PlatformData(Model):
    """Platform-specific (X) profile details."""

    is_verified_blue: bool | None = None
    """Has the blue (subscription) check mark."""
    is_verified_gold: bool | None = None
    """Has the gold (organisation) check mark."""
    is_verified_gray: bool | None = None
    """Has the gray (government) check mark."""
    professional_category: str | None = None
    """Category id of a professional account."""
    url_entities: list[UrlEntity] = msgspec.field(default_factory=list)
    """Links found in the profile."""
    banner_url: str | None = None
    """Profile banner image URL."""
    tweets_count: int | None = None
    """Number of posts, as the platform reports it."""
    favorites_count: int | None = None
    """Number of likes given."""
    raw_data: dict[str, Any] | None = None
    """The platform's raw profile object, when Inbox passes it on."""


class Prospect(Model):
    """A person on a messaging platform (today: X)."""

    platform: str | None = None
    """Platform name, e.g. "twitter"."""
    platform_id: str | None = None
    """The platform's numeric user id, as a string."""
    external_id: str | None = None
    """Inbox's external id of the prospect."""
    document_id: int | None = None
    """Inbox's internal document number."""
    display_name: str | None = None
    """Display name on the platform."""
    username: str | None = None
    """Username (without the @)."""
    handle: str | None = None
    """Handle as shown on the platform."""
    image: str | None = None
    """Profile image URL."""
    image_normalized: str | None = None
    """Profile image URL at a normalised size."""
    bio: str | None = None
    """Profile bio."""
    location: str | None = None
    """Location from the profile."""
    profile_url: str | None = None
    """URL of the profile page."""
    website_url: str | None = None
    """Website from the profile."""
    website_domain: str | None = None
    """Domain of the website."""
    verified: str | None = None
    """Verification: "none", "verified", "business" or "government" (others kept as given)."""
    profile_type: str | None = None
    """"personal", "business" or "government" (others kept as given)."""
    is_protected: bool | None = None
    """The account's posts are protected."""
    follower_count: int | None = None
    """Followers."""
    following_count: int | None = None
    """Accounts followed."""
    post_count: int | None = None
    """Posts."""
    engagement_count: int | None = None
    """Engagements, where known."""
    listed_count: int | None = None
    """Lists the account is on, where known."""
    platform_created_at: datetime | None = None
    """When the account was created on the platform (aware, UTC)."""
    first_seen_at: datetime | None = None
    """When Inbox first saw the prospect."""
    last_updated_at: datetime | None = None
    """When the profile was last updated."""
    last_enriched_at: datetime | None = None
    """When the profile was last enriched."""
    last_active_at: datetime | None = None
    """When the account was last seen active."""
    source: str | None = None
    """Where the data came from: "cached", "indexed", "live" or "merged" (others kept)."""
    is_fresh: bool | None = None
    """The data is fresh."""
    is_stale: bool | None = None
    """The data is stale."""
    confidence: float | None = None
    """Confidence in the data, 0..1."""
    account_status: str | None = None
    """Account status, e.g. "active"."""
    platform_data: PlatformData = msgspec.field(default_factory=PlatformData)
    """Platform-specific details."""


class Thread(Model):
    """A conversation with the prospect on one of the team's linked accounts."""

    id: str | None = None
    """Thread id."""
    account_link_id: str | None = None
    """The linked account the thread belongs to."""
    last_message_timestamp: datetime | None = None
    """When the last message was sent."""
    created_at: datetime | None = None
    """When the thread was created."""


class Context(Model):
    """The team's CRM context on a prospect."""

    tags: list[str] = msgspec.field(default_factory=list)
    """Tag ids."""
    status_id: str | None = None
    """Pipeline status id."""
    valuation: float | None = None
    """Deal value."""
    notes: str | None = None
    """Free-text notes."""
    threads: list[Thread] = msgspec.field(default_factory=list)
    """Threads with the prospect across the team's linked accounts."""
    assignee_id: str | None = None
    """Team member the prospect is assigned to (newer payloads)."""
    done: bool | None = None
    """Marked done (newer payloads)."""


class ProspectWithContext(Prospect):
    """A prospect together with the team's context, as the prospect endpoints return it."""

    id: str | None = None
    """Inbox's prospect id (the one `client.prospects.get` takes)."""
    context: Context = msgspec.field(default_factory=Context)
    """The team's CRM context."""


class ContextUpdate(Body, kw_only=True, omit_defaults=True):
    """The body of a context update: only the fields given are sent, the PATCH leaves the rest.

    UNSET fields are left out of the body; None is sent as null (clearing the field).
    """

    notes: str | UnsetType | None = UNSET
    """Free-text notes."""
    valuation: float | UnsetType | None = UNSET
    """The deal's value."""
    status_id: str | UnsetType | None = UNSET
    """The pipeline status's id."""
    add_tags: list[str] | UnsetType = UNSET
    """Tag ids to add."""
    remove_tags: list[str] | UnsetType = UNSET
    """Tag ids to remove."""
    assignee_id: str | UnsetType | None = UNSET
    """The team member's id, on every thread of the prospect."""
    done: bool | UnsetType = UNSET
    """Marks every thread of the prospect on the team done (or not)."""
