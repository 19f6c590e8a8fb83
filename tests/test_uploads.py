"""Image uploads to a local S3-compatible server (moto) and to the local folder."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3

from tests.factories import create_live, create_product, login_manager

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
BUCKET = "vitrine-images"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto server: it speaks S3's HTTP API on loopback."""
    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "moto_server"),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib3.request("GET", endpoint, timeout=1)
            break
        except urllib3.exceptions.HTTPError:
            time.sleep(0.2)
    try:
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def settings_overrides(
    request: pytest.FixtureRequest, tmp_path: Path
) -> dict[str, Any]:
    if "s3" in request.node.name:
        endpoint = request.getfixturevalue("s3_endpoint")
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
            client.create_bucket(Bucket=BUCKET)
        return {"s3_bucket": BUCKET, "s3_endpoint_url": endpoint}
    return {"media_dir": str(tmp_path / "media")}


@pytest.mark.gen_test(timeout=30)
async def test_presigned_s3_upload(api, database_url, settings):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api)

    grant = await api.post(
        "/api/v1/manager/uploads",
        {"filename": "shirt.png", "content_type": "image/png", "size": len(PNG)},
    )
    assert grant.status == 201, grant
    upload = grant.json
    response = await asyncio.to_thread(
        urllib3.request,
        "POST",
        upload["url"],
        fields={**upload["fields"], "file": ("shirt.png", PNG, "image/png")},
    )
    patched = await api.patch(
        f"/api/v1/manager/lives/summer-24/products/{product['id']}",
        {"image_url": upload["image_url"]},
    )

    assert upload["method"] == "POST"
    assert response.status in (200, 201, 204), response.data
    key = upload["fields"]["key"]
    client = boto3.client(
        "s3", region_name="us-east-1", endpoint_url=settings.s3_endpoint_url
    )
    stored = client.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == PNG
    assert stored["ContentType"] == "image/png"
    assert upload["image_url"].endswith(key)
    assert patched.json["image_url"] == upload["image_url"]


@pytest.mark.gen_test
async def test_upload_request_checks_type_and_size(api, database_url):
    await login_manager(api, database_url)

    wrong_type = await api.post(
        "/api/v1/manager/uploads",
        {"filename": "x.gif", "content_type": "image/gif", "size": 10},
    )
    too_big = await api.post(
        "/api/v1/manager/uploads",
        {"filename": "x.png", "content_type": "image/png", "size": 6 * 1024 * 1024},
    )
    api.access_token = None
    anonymous = await api.post(
        "/api/v1/manager/uploads",
        {"filename": "x.png", "content_type": "image/png", "size": 10},
    )

    assert wrong_type.status == 400
    assert wrong_type.error["field"] == "content_type"
    assert too_big.status == 400
    assert too_big.error["field"] == "size"
    assert anonymous.status == 401


@pytest.mark.gen_test
async def test_local_folder_upload(api, database_url, settings):
    await login_manager(api, database_url)
    grant = (
        await api.post(
            "/api/v1/manager/uploads",
            {"filename": "x.png", "content_type": "image/png", "size": len(PNG)},
        )
    ).json

    forged = await api.request(
        "PUT",
        grant["url"].replace("signature=", "signature=0"),
        raw_body=PNG,
        headers={"Content-Type": "image/png"},
    )
    not_png = await api.request(
        "PUT",
        grant["url"],
        raw_body=b"x" * len(PNG),
        headers={"Content-Type": "image/png"},
    )
    stored = await api.request(
        "PUT", grant["url"], raw_body=PNG, headers={"Content-Type": "image/png"}
    )
    served = await api.get(grant["image_url"])

    assert grant["method"] == "PUT"
    assert forged.status == 403
    assert not_png.status == 400
    assert stored.status == 201
    assert served.status == 200
    assert served.raw == PNG
    assert (
        Path(settings.media_dir) / grant["image_url"].removeprefix("/media/")
    ).exists()


@pytest.mark.gen_test
async def test_media_errors_are_json(api, settings):
    folder_path = Path(settings.media_dir, "folder")
    await asyncio.to_thread(folder_path.mkdir, parents=True)

    missing = await api.get("/media/missing.png")
    folder = await api.get("/media/folder")

    assert missing.status == 404
    assert missing.error["code"] == "not_found"
    assert missing.error["message"] == "no image at /media/missing.png"
    assert folder.status == 403
    assert folder.error["code"] == "forbidden"
    assert settings.media_dir not in folder.error["message"]
