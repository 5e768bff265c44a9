"""The sandbox's Web API, driven by the real slack_sdk AsyncWebClient."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.sandbox import SandboxClient, SlackSandbox
from tests.sandbox.conftest import TOKEN

TS = re.compile(r"^\d{10}\.\d{6}$")


async def test_auth_test_identifies_the_bot(web: AsyncWebClient, sb: SlackSandbox) -> None:
    auth = await web.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"], auth["user"]) == ("U0BOT", "B0BOT", "T0SANDBOX", "agent")
    assert sb.url.startswith("http://127.0.0.1:") and sb.api_url == f"{sb.url}/api/"


async def test_post_thread_update_and_read_back(web: AsyncWebClient, sb: SlackSandbox) -> None:
    root = await web.chat_postMessage(channel="C0GENERAL", text="hello")
    assert root["channel"] == "C0GENERAL" and TS.match(root["ts"])
    assert root["message"]["bot_id"] == "B0BOT" and root["message"]["user"] == "U0BOT"

    first = await web.chat_postMessage(channel="C0GENERAL", text="one", thread_ts=root["ts"])
    sb.post("U0ALICE", "C0GENERAL", "two", thread_ts=root["ts"])
    assert float(first["ts"]) > float(root["ts"])

    replies = await web.conversations_replies(channel="C0GENERAL", ts=root["ts"])
    assert [m["text"] for m in replies["messages"]] == ["hello", "one", "two"]
    assert replies["has_more"] is False
    parent = replies["messages"][0]
    assert parent["reply_count"] == 2 and parent["reply_users"] == ["U0BOT", "U0ALICE"]
    assert parent["latest_reply"] == replies["messages"][-1]["ts"]

    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*edited*"}}]
    updated = await web.chat_update(channel="C0GENERAL", ts=first["ts"], text="uno", blocks=blocks)
    assert updated["text"] == "uno"
    (stored,) = [m for m in sb.replies("C0GENERAL", root["ts"]) if m["ts"] == first["ts"]]
    assert stored["edited"]["user"] == "U0BOT" and stored["blocks"][0]["text"]["text"] == "*edited*"
    assert stored["blocks"][0]["block_id"]

    history = await web.conversations_history(channel="C0GENERAL")
    assert [m["text"] for m in history["messages"]] == ["hello"]

    link = await web.chat_getPermalink(channel="C0GENERAL", message_ts=first["ts"])
    digits = first["ts"].replace(".", "")
    assert link["permalink"] == f"{sb.url}/archives/C0GENERAL/p{digits}?thread_ts={root['ts']}&cid=C0GENERAL"

    await web.chat_delete(channel="C0GENERAL", ts=first["ts"])
    assert len(sb.replies("C0GENERAL", root["ts"])) == 2


async def test_history_is_newest_first_with_limit_and_cursor(web: AsyncWebClient) -> None:
    for i in range(5):
        await web.chat_postMessage(channel="C0EXPERTS", text=f"m{i}")
    page = await web.conversations_history(channel="C0EXPERTS", limit=2)
    assert [m["text"] for m in page["messages"]] == ["m4", "m3"] and page["has_more"]
    rest = await web.conversations_history(
        channel="C0EXPERTS", limit=10, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in rest["messages"]] == ["m2", "m1", "m0"] and not rest["has_more"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "C0NOPE", "text": "x"}, "channel_not_found"),
        ({"channel": "C0GENERAL"}, "no_text"),
        ({"channel": "C0GENERAL", "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": "C0GENERAL", "blocks": [{"type": "bogus"}]}, "invalid_blocks"),
    ],
)
async def test_post_message_errors(web: AsyncWebClient, kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(SlackApiError) as info:
        await web.api_call("chat.postMessage", json=kwargs)
    assert info.value.response["error"] == error


async def test_invalid_blocks_explain_themselves(web: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as info:
        await web.chat_postMessage(channel="C0GENERAL", text="t", blocks=blocks)
    assert info.value.response["errors"] == ["must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]


async def test_not_in_channel_and_cant_update(web: AsyncWebClient, sb: SlackSandbox) -> None:
    sb.workspace.add_channel("C0QUIET", "quiet", ["U0ALICE"], bot_member=False)
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await web.chat_postMessage(channel="C0QUIET", text="x")
    ts = sb.post("U0ALICE", "C0GENERAL", "mine")
    with pytest.raises(SlackApiError, match="cant_update_message"):
        await web.chat_update(channel="C0GENERAL", ts=ts, text="hijack")
    with pytest.raises(SlackApiError, match="message_not_found"):
        await web.chat_update(channel="C0GENERAL", ts="1.000001", text="x")


async def test_auth_errors_and_unknown_method(sb: SlackSandbox) -> None:
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await AsyncWebClient(token="xoxb-wrong", base_url=sb.api_url).auth_test()
    with pytest.raises(SlackApiError, match="not_authed"):
        await AsyncWebClient(base_url=sb.api_url).auth_test()
    with pytest.raises(SlackApiError, match="unknown_method"):
        await AsyncWebClient(token=TOKEN, base_url=sb.api_url).api_call("chat.teleport")


async def test_form_encoded_bodies_and_token_param(sb: SlackSandbox) -> None:
    blocks = json.dumps([{"type": "section", "text": {"type": "plain_text", "text": "from a form"}}])
    async with aiohttp.ClientSession() as http:
        form = {"token": TOKEN, "channel": "C0GENERAL", "text": "t", "blocks": blocks}
        async with http.post(f"{sb.api_url}chat.postMessage", data=form) as resp:
            body = await resp.json()
        async with http.get(f"{sb.api_url}conversations.info", params={"token": TOKEN, "channel": "C0GENERAL"}) as resp:
            info = await resp.json()
    assert body["ok"] and body["message"]["blocks"][0]["text"]["text"] == "from a form"
    assert info["channel"]["name"] == "general" and info["channel"]["is_member"] is True
    (call,) = sb.calls("chat.postMessage")
    assert "token" not in call["params"] and call["params"]["blocks"][0]["type"] == "section"
    assert call["response"]["ok"] is True


async def test_rate_limit_is_retried_by_slack_sdk(web: AsyncWebClient, sb: SlackSandbox) -> None:
    sb.rate_limit("chat.postMessage", times=1, retry_after=0)
    with pytest.raises(SlackApiError, match="ratelimited") as info:
        await web.chat_postMessage(channel="C0GENERAL", text="x")
    assert info.value.response.status_code == 429 and info.value.response.headers["Retry-After"] == "0"

    sb.rate_limit("chat.postMessage", times=1, retry_after=0)
    retrying = AsyncWebClient(
        token=TOKEN, base_url=sb.api_url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    )
    assert (await retrying.chat_postMessage(channel="C0GENERAL", text="eventually"))["ok"]
    assert [c["status"] for c in sb.calls("chat.postMessage")] == [429, 429, 200]


async def test_ephemerals_stay_out_of_history(web: AsyncWebClient, sb: SlackSandbox, people: SandboxClient) -> None:
    sent = await web.chat_postEphemeral(channel="C0GENERAL", user="U0BOB", text="psst")
    assert TS.match(sent["message_ts"])
    assert [m["text"] for m in await people.ephemerals("C0GENERAL", "U0BOB")] == ["psst"]
    assert await people.ephemerals("C0GENERAL", "U0ALICE") == []
    assert await people.history("C0GENERAL") == []
    with pytest.raises(SlackApiError, match="user_not_in_channel"):
        await web.chat_postEphemeral(channel="C0EXPERTS", user="U0ALICE", text="x")


async def test_reactions(web: AsyncWebClient, sb: SlackSandbox) -> None:
    ts = sb.post("U0ALICE", "C0GENERAL", "react to me")
    await web.reactions_add(channel="C0GENERAL", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        await web.reactions_add(channel="C0GENERAL", timestamp=ts, name="eyes")
    assert sb.history("C0GENERAL")[0]["reactions"] == [{"name": "eyes", "users": ["U0BOT"], "count": 1}]
    await web.reactions_remove(channel="C0GENERAL", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="no_reaction"):
        await web.reactions_remove(channel="C0GENERAL", timestamp=ts, name="eyes")


async def test_directory_lookups(web: AsyncWebClient) -> None:
    alice = await web.users_info(user="U0ALICE")
    assert alice["user"]["profile"]["real_name"] == "Alice Adams"
    assert alice["user"]["profile"]["display_name"] == "alice"
    experts = await web.usergroups_users_list(usergroup="S0EXPERTS")
    assert experts["users"] == ["U0BOB", "U0CAROL"]
    members = await web.conversations_members(channel="C0EXPERTS")
    assert set(members["members"]) == {"U0BOT", "U0BOB", "U0CAROL"}
    dm = await web.conversations_info(channel="D0ALICE")
    assert dm["channel"]["is_im"] and dm["channel"]["user"] == "U0ALICE"
    opened = await web.conversations_open(users="U0BOB")
    assert opened["channel"]["id"] == "D0BOB"
    with pytest.raises(SlackApiError, match="user_not_found"):
        await web.users_info(user="U0NOBODY")


async def test_assistant_status(web: AsyncWebClient, people: SandboxClient) -> None:
    ts = await people.post("U0ALICE", "D0ALICE", "help")
    await web.assistant_threads_setStatus(channel_id="D0ALICE", thread_ts=ts, status="is thinking...")
    assert await people.status("D0ALICE", ts) == "is thinking..."
    await web.assistant_threads_setStatus(channel_id="D0ALICE", thread_ts=ts, status="")
    assert await people.status("D0ALICE", ts) == ""


async def test_streaming_message_grows(web: AsyncWebClient, sb: SlackSandbox) -> None:
    root = sb.post("U0ALICE", "C0GENERAL", "stream please")
    stream = await web.chat_stream(
        channel="C0GENERAL", thread_ts=root, recipient_user_id="U0ALICE", recipient_team_id="T0SANDBOX", buffer_size=1
    )
    await stream.append(markdown_text="Hello")
    await stream.append(markdown_text=", world")
    (_, reply) = sb.replies("C0GENERAL", root)
    assert reply["text"] == "Hello, world" and reply["is_streaming"]
    await stream.stop(markdown_text="!")
    (_, reply) = sb.replies("C0GENERAL", root)
    assert reply["text"] == "Hello, world!" and "is_streaming" not in reply
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        await web.chat_appendStream(channel="C0GENERAL", ts=reply["ts"], markdown_text="late")


async def test_trigger_ids_are_single_use_and_expire(web: AsyncWebClient, sb: SlackSandbox) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": []}
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        await web.views_open(trigger_id="123.456.abc", view=view)
    trigger = sb.modals.mint_trigger("U0ALICE")
    opened = await web.views_open(trigger_id=trigger, view=view)
    assert opened["view"]["id"].startswith("V") and opened["view"]["state"] == {"values": {}}
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        await web.views_open(trigger_id=trigger, view=view)
    sb.modals.trigger_ttl = 0.0
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        await web.views_open(trigger_id=sb.modals.mint_trigger("U0ALICE"), view=view)
    long_title = {**view, "title": {"type": "plain_text", "text": "x" * 25}}
    sb.modals.trigger_ttl = 3.0
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await web.views_open(trigger_id=sb.modals.mint_trigger("U0ALICE"), view=long_title)


async def test_views_update_push_and_hash(web: AsyncWebClient, sb: SlackSandbox) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "One"}, "blocks": [], "external_id": "ext-1"}
    opened = (await web.views_open(trigger_id=sb.modals.mint_trigger("U0BOB"), view=view))["view"]
    two = {**view, "title": {"type": "plain_text", "text": "Two"}}
    updated = (await web.views_update(external_id="ext-1", view=two, hash=opened["hash"]))["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await web.views_update(view_id=opened["id"], view=two, hash=opened["hash"])
    pushed = {"type": "modal", "title": {"type": "plain_text", "text": "Pushed"}, "blocks": []}
    top = (await web.views_push(trigger_id=sb.modals.mint_trigger("U0BOB"), view=pushed))["view"]
    assert top["previous_view_id"] == opened["id"] and top["root_view_id"] == opened["id"]
    assert [v["title"]["text"] for v in sb.views("U0BOB")] == ["Two", "Pushed"]


async def test_metadata_is_listed_only_with_include_all_metadata(web: AsyncWebClient, sb: SlackSandbox) -> None:
    metadata = {"event_type": "bot_reply", "event_payload": {"reply_id": "r-1", "part": 2}}
    root = await web.chat_postMessage(channel="C0GENERAL", text="root", metadata=metadata)
    form = {"token": TOKEN, "channel": "C0GENERAL", "text": "reply", "thread_ts": root["ts"]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sb.api_url}chat.postMessage", data={**form, "metadata": json.dumps(metadata)}) as resp:
            assert (await resp.json())["ok"]
        async with http.post(f"{sb.api_url}chat.postMessage", data={**form, "metadata": "{oops"}) as resp:
            assert (await resp.json())["error"] == "invalid_metadata_format"

    plain = await web.conversations_history(channel="C0GENERAL")
    assert [m["text"] for m in plain["messages"]] == ["root"] and "metadata" not in plain["messages"][0]
    full = await web.conversations_history(channel="C0GENERAL", include_all_metadata=True)
    assert full["messages"][0]["metadata"] == metadata
    plain = await web.conversations_replies(channel="C0GENERAL", ts=root["ts"])
    assert [m["text"] for m in plain["messages"]] == ["root", "reply"]
    assert not any("metadata" in m for m in plain["messages"])
    full = await web.conversations_replies(channel="C0GENERAL", ts=root["ts"], include_all_metadata=True)
    assert [m["metadata"] for m in full["messages"]] == [metadata, metadata]
    assert [m["metadata"] for m in sb.replies("C0GENERAL", root["ts"])] == [metadata, metadata]

    for bad, error in [
        ("not an object", "invalid_metadata_format"),
        ({"event_payload": {}}, "invalid_metadata_schema"),
        ({"event_type": "x", "event_payload": "y"}, "invalid_metadata_schema"),
    ]:
        with pytest.raises(SlackApiError, match=error):
            await web.api_call("chat.postMessage", json={"channel": "C0GENERAL", "text": "x", "metadata": bad})
    assert len(sb.history("C0GENERAL")) == 1
