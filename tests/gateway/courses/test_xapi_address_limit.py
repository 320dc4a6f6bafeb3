"""xAPI requests without a valid key are charged to their own client address (behind the
trusted proxy, the address it forwards), over real HTTP, not to one bucket that every
course platform would share; and so is a request refused whole with a valid key, as on
/v1."""

from __future__ import annotations

import httpx

from ibest.backbone.settings import Settings
from services.gateway.bootstrap import key_admin
from services.gateway.courses.settings import CourseSettings
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from tests.harness import running_service


async def test_xapi_requests_without_a_valid_key_are_charged_to_their_own_address(
    settings: Settings, course_settings: CourseSettings
) -> None:
    own = GatewaySettings(IBEST_GATEWAY_ADDRESS_RATE=0.1, IBEST_GATEWAY_ADDRESS_BURST=3)
    unknown = {"Authorization": "Bearer ibk_000000000000_" + "y" * 43}
    async with (
        running_service(build_spec(own, course_settings), settings) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):

        async def post(address: str) -> int:
            headers = {**unknown, "X-Forwarded-For": address}
            return (await client.post("/xapi/statements", json={}, headers=headers)).status_code

        assert [await post("203.0.113.30") for _ in range(5)] == [401, 401, 401, 429, 429]
        # charged to that address, not to one bucket every platform shares
        assert await post("203.0.113.31") == 401


async def test_xapi_requests_refused_whole_with_a_valid_key_are_charged_to_the_address(
    settings: Settings, course_settings: CourseSettings
) -> None:
    own = GatewaySettings(IBEST_GATEWAY_ADDRESS_RATE=0.1, IBEST_GATEWAY_ADDRESS_BURST=3)
    async with key_admin(settings) as admin:
        _, token = await admin.create("RTH")  # a trust key: refused on /xapi (403)
    trust_key = {"Authorization": f"Bearer {token}", "X-Experience-API-Version": "1.0.3"}
    async with (
        running_service(build_spec(own, course_settings), settings) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):

        async def post(address: str) -> int:
            headers = {**trust_key, "X-Forwarded-For": address}
            return (await client.post("/xapi/statements", json={}, headers=headers)).status_code

        assert [await post("203.0.113.40") for _ in range(5)] == [403, 403, 403, 429, 429]
        assert await post("203.0.113.41") == 403
