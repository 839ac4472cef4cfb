"""The REST service (``course/serve.py``, ``python -m course serve``): the real server, started by the command line
in a child process on a free loopback port with a tiny Keras model, answering httpx; bad input of every kind gets
a 4xx naming what was expected, and the server is still up afterwards. The request parsers are also checked
without a server (fast tier)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from course.serve import (
    EXPECTED_PHOTO,
    MAX_FACES,
    MAX_UPLOAD_BYTES,
    InputError,
    decode_photo,
    faces_from_body,
)
from data_loaders import EMOTIONS

ASTRONAUT_FACE = (174, 64, 100, 100)  # the kit's detector on skimage's astronaut (benchmarks/face_detection.py)


# ------------------------------------------------------------------------------------------------------- helpers
def png_header(width: int, height: int) -> bytes:
    """A small PNG file whose header claims ``width`` × ``height`` grey pixels (its pixel data a few bytes): what a
    decompression bomb shows before it is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def encoded(image: np.ndarray, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, fmt, **options)
    return out.getvalue()


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def save_model(path, input_shape=(48, 48, 1), classes=7, activation="softmax"):
    """A tiny seeded Keras model (a conv, a batch norm to fold, a dense layer) saved to ``path``."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(4, 3, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.MaxPooling2D(4),
            layers.Flatten(),
            layers.Dense(classes, activation=activation),
        ],
        name="tiny_emotions",
    )
    rng = np.random.default_rng(0)  # batch-norm statistics that are not the identity, so folding them matters
    bn = model.layers[1]
    bn.set_weights([rng.uniform(0.5, 2, 4), rng.normal(0, 0.1, 4), rng.normal(0, 0.1, 4), rng.uniform(0.5, 2, 4)])
    model.save(path)
    return model


def predict(model, faces: np.ndarray) -> np.ndarray:
    """``model``'s probabilities of ``float32 (N, 48, 48, 1)`` faces, as numpy."""
    import keras

    return keras.ops.convert_to_numpy(model(faces, training=False))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_face_answer(answer: dict, where: str) -> None:
    """Seven probabilities by FER2013 name summing to 1, and the label their arg-max."""
    p = answer["probabilities"]
    assert list(p) == list(EMOTIONS), f"{where}: expected the keys {list(EMOTIONS)}, found {list(p)}"
    assert abs(sum(p.values()) - 1) < 1e-4, f"{where}: expected probabilities summing to 1, found {sum(p.values())}"
    assert min(p.values()) >= 0, f"{where}: expected probabilities ≥ 0, found {p}"
    top = max(p, key=p.get)
    assert answer["label"] == top, f"{where}: expected the label {top} (the arg-max), found {answer['label']}"


# --------------------------------------------------------------------------------------- parsers (no server, fast)
def test_faces_parse_from_json_and_bytes_alike():
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    from_json = faces_from_body(json.dumps({"faces": faces.tolist()}).encode(), "application/json")
    from_bytes = faces_from_body(faces.tobytes(), "application/octet-stream")
    channel = faces_from_body(json.dumps({"faces": faces[..., None].tolist()}).encode(), "application/json")
    assert from_json.shape == (3, 48, 48, 1) and from_json.dtype == np.float32, (
        f"expected float32 (3, 48, 48, 1), found {from_json.dtype} {from_json.shape}"
    )
    assert np.array_equal(from_json, from_bytes) and np.array_equal(from_json, channel), (
        "expected the same faces from JSON, from bytes and from JSON with a channel axis; found them different"
    )
    assert np.allclose(from_json[..., 0], faces / 255.0), "expected grey levels scaled by 1/255 as kit models take"


@pytest.mark.parametrize(
    "body, content_type, status, expected",
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        # regression: a RecursionError in the parser answered 500
        (b'{"faces": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", 400, "nested too deeply"),
        (b"[1, 2]", "application/json", 422, 'a list "faces"'),
        (b'{"face": []}', "application/json", 422, 'a list "faces"'),
        (b'{"faces": []}', "application/json", 422, f"1 to {MAX_FACES} faces"),
        (json.dumps({"faces": np.zeros((2, 48, 47)).tolist()}).encode(), "application/json", 422, "shape (N, 48, 48)"),
        (json.dumps({"faces": [[[1, 2], [3]]]}).encode(), "application/json", 422, "ragged"),
        (json.dumps({"faces": [[["a"] * 48] * 48]}).encode(), "application/json", 422, "numbers 0-255"),
        (json.dumps({"faces": [[[True] * 48] * 48]}).encode(), "application/json", 422, "numbers 0-255"),
        (b'{"faces": [' + b",".join([b"[" + b",".join([b"[" + b",".join([b"NaN"] * 48) + b"]"] * 48) + b"]"]) + b"]}",
         "application/json", 422, "NaN or infinite"),
        (json.dumps({"faces": np.full((1, 48, 48), 256).tolist()}).encode(), "application/json", 422, "0-255"),
        (json.dumps({"faces": np.full((1, 48, 48), -1).tolist()}).encode(), "application/json", 422, "0-255"),
        (json.dumps({"faces": np.zeros((MAX_FACES + 1, 48, 48), int).tolist()}).encode(), "application/json", 422,
         f"1 to {MAX_FACES} faces"),
        (b"\0" * 2305, "application/octet-stream", 422, "N x 2304 bytes"),
        (b"", "application/octet-stream", 422, "N x 2304 bytes"),
        (b"\0" * 2304 * (MAX_FACES + 1), "application/octet-stream", 422, f"1 to {MAX_FACES} faces"),
        (b"\0" * 2304, "text/plain", 415, "application/json"),
        (b"\0" * 2304, None, 415, "application/octet-stream"),
    ],
)  # fmt: skip
def test_bad_faces_are_refused_naming_what_was_expected(body, content_type, status, expected):
    with pytest.raises(InputError) as caught:
        faces_from_body(body, content_type)
    assert caught.value.status == status, f"expected status {status}, found {caught.value.status}: {caught.value}"
    assert expected in str(caught.value), f"expected the message to name {expected!r}, found {caught.value}"


@pytest.mark.parametrize(
    "data, status, expected",
    [
        (b"", 415, "empty"),
        (b"GIF89a not what we take", 415, "not a JPEG or PNG"),
        (encoded(np.zeros((8, 8), np.uint8), "BMP"), 415, "not a JPEG or PNG"),
        (encoded(np.zeros((64, 64), np.uint8), "JPEG")[:200], 415, "complete JPEG or PNG"),
        (png_header(0, 0), 415, "the PNG image's header cannot be read (a size of 0 pixels"),  # was "not a PNG"
        (png_header(8000, 7000), 413, "56.0 megapixels"),
        (png_header(100_000, 100_000), 413, "too many pixels (Image size (10000000000 pixels)"),  # the size found
    ],
)
def test_bad_photos_are_refused_naming_what_was_expected(data, status, expected):
    with pytest.raises(InputError) as caught:
        decode_photo(data)
    assert caught.value.status == status, f"expected status {status}, found {caught.value.status}: {caught.value}"
    assert expected in str(caught.value), f"expected the message to name {expected!r}, found {caught.value}"


@pytest.mark.parametrize("port", [-1, 99999])
def test_a_port_outside_the_tcp_range_is_refused_before_the_model_loads(port):
    """Regression: ``--port 99999`` loaded the model, then ended in an OverflowError traceback from bind()."""
    from course.serve import serve

    with pytest.raises(ValueError, match=rf"port {port}: expected a TCP port 0-65535"):
        serve("no-such-model.keras", port=port)


def test_photos_decode_to_upright_grey():
    rgba = np.zeros((20, 30, 4), np.uint8)  # fully transparent: composited on white
    assert (decode_photo(encoded(rgba, "PNG")) == 255).all(), "expected transparent pixels to become white (255)"
    grey16 = np.full((10, 10), 65535, np.uint16)
    assert (decode_photo(encoded(grey16, "PNG")) == 255).all(), "expected 16-bit white to become 255"
    image = Image.fromarray(np.zeros((10, 20), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° to show upright
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    assert decode_photo(out.getvalue()).shape == (20, 10), "expected the EXIF rotation applied: (20, 10)"


def test_serve_is_a_subcommand_with_examples():
    from course.__main__ import COMMANDS, parser

    args = parser().parse_args(["serve", "m.keras", "--port", "8123"])
    assert (args.model, args.host, args.port) == ("m.keras", "127.0.0.1", 8123), (
        f"expected model m.keras on 127.0.0.1:8123 (loopback by default), found {args.model} {args.host}:{args.port}"
    )
    assert COMMANDS["serve"][0] is args.run and COMMANDS["serve"][3], "expected serve registered with examples"


# ------------------------------------------------------------------------------------------------- model checks
@pytest.mark.slow
@pytest.mark.parametrize(
    "shape, classes, activation, expected",
    [
        ((64, 64, 1), 7, "softmax", "input shape (None, 48, 48, 1); found [(None, 64, 64, 1)]"),
        ((48, 48, 3), 7, "softmax", "found [(None, 48, 48, 3)]"),
        ((48, 48, 1), 5, "softmax", "output shape (None, 7); found [(None, 5)]"),
        ((48, 48, 1), 7, "linear", "expected probabilities (a final softmax)"),
    ],
)
def test_a_model_that_is_not_a_face_classifier_is_refused_at_start(
    tmp_path, capsys, monkeypatch, shape, classes, activation, expected
):
    from course.__main__ import main

    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("expected the model refused before serving"))
    path = tmp_path / "other.keras"
    save_model(path, shape, classes, activation)
    status = main(["serve", str(path), "--port", str(free_port())])
    err = capsys.readouterr().err
    assert status == 2, f"expected exit status 2 before any port is opened, found {status}; stderr {err}"
    assert expected in err, f"expected the error to say {expected!r}; found {err}"


@pytest.mark.slow
def test_a_file_that_is_not_a_model_is_refused_at_start(tmp_path, capsys, monkeypatch):
    from course.__main__ import main

    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("expected the file refused before serving"))
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    status = main(["serve", str(tmp_path / "junk.keras")])
    err = capsys.readouterr().err
    assert status == 2 and "not a Keras model" in err, (
        f"expected status 2 and 'not a Keras model'; found {status} {err}"
    )
    status = main(["serve", str(tmp_path / "missing.keras")])
    err = capsys.readouterr().err
    assert status == 2 and "no such model file" in err, f"expected 'no such model file'; found {status} {err}"


# -------------------------------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``(base URL, the model served)``: ``python -m course serve tiny.keras --port P`` on a free loopback port;
    checks at the end that the server is still running (no input killed it)."""
    import httpx

    folder = tmp_path_factory.mktemp("serve")
    model = save_model(folder / "tiny.keras")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for _attempt in range(3):  # the free port may be taken before the server binds it: try another
        port = free_port()
        log = open(folder / f"server-{port}.log", "w+")
        process = subprocess.Popen(
            [sys.executable, "-m", "course", "serve", str(folder / "tiny.keras"), "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        if process.poll() is None and time.monotonic() < deadline:
            break
        process.kill()
        process.wait()
        log.seek(0)
        if "address already in use" not in log.read().lower():
            log.seek(0)
            pytest.fail(f"expected the server to start on {url} within 180 s; its log:\n{log.read()[-3000:]}")
    yield url, model
    alive = process.poll() is None
    process.terminate()
    process.wait(30)
    log.seek(0)
    assert alive, f"expected the server still running after every test; it exited. Log:\n{log.read()[-3000:]}"
    log.close()


@pytest.fixture(scope="module")
def http(server):
    import httpx

    with httpx.Client(base_url=server[0], timeout=60) as client:
        yield client


@pytest.mark.slow
def test_health_and_api_page(http):
    health = http.get("/health").json()
    expected = {
        "model": "tiny_emotions",
        "input_shape": [48, 48, 1],
        "classes": list(EMOTIONS),
        "batch_norms_folded": 1,
        "compiled": True,
    }
    found = {k: health.get(k) for k in expected}
    assert found == expected, f"expected /health to report {expected}, found {found}"
    assert health["parameters"] > 0, f"expected a parameter count, found {health['parameters']}"
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower(), f"expected the Swagger UI page at /docs: {docs}"
    remote = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", docs.text)
    assert not remote, f"expected the API page to load nothing from other hosts (offline), found {remote}"
    script = re.search(r"""src=["']([^"']*swagger-ui-bundle[^"']*)""", docs.text)
    assert script and http.get(script.group(1)).status_code == 200, (
        f"expected the Swagger UI script served by the service itself, found {script and script.group(1)}"
    )
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/health", "/predict/photo", "/predict/faces"} <= set(paths), f"expected the 3 endpoints; found {paths}"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_photo_gets_every_face_with_its_box_and_emotion(server, http, fmt):
    from widgets.live_emotion import crop_for_model

    _, model = server
    image = astronaut()
    photo = (
        encoded(image, fmt)
        if fmt == "JPEG"
        else encoded(np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]), fmt)
    )
    response = http.post("/predict/photo", files={"file": (f"astronaut.{fmt.lower()}", photo, f"image/{fmt.lower()}")})
    assert response.status_code == 200, f"expected 200, found {response.status_code}: {response.text}"
    answer = response.json()
    assert (answer["width"], answer["height"]) == (512, 512), f"expected a 512 x 512 photo, found {answer}"
    assert len(answer["faces"]) == 1, f"expected the astronaut's one face, found {answer['faces']}"
    face = answer["faces"][0]
    box = face["box"]
    x, y, w, h = ASTRONAUT_FACE
    overlap = max(0, min(x + w, box["x"] + box["w"]) - max(x, box["x"])) * max(
        0, min(y + h, box["y"] + box["h"]) - max(y, box["y"])
    )
    assert overlap > 0.6 * w * h, f"expected a box on the face near {ASTRONAUT_FACE}, found {box}"
    assert_face_answer(face, f"{fmt} photo")
    grey = np.asarray(Image.open(io.BytesIO(photo)).convert("L"))
    crop = crop_for_model(grey, (box["x"], box["y"], box["w"], box["h"]))  # the kit's crop, as the widget makes it
    expected = predict(model, crop)[0]
    found = np.array([face["probabilities"][e] for e in EMOTIONS])
    assert np.abs(found - expected).max() < 1e-4, f"expected the model's probabilities {expected}, found {found}"


@pytest.mark.slow
def test_a_photo_without_a_face_gets_an_empty_list(http):
    flat = encoded(np.full((120, 160), 128, np.uint8), "PNG")
    response = http.post("/predict/photo", files={"file": ("flat.png", flat, "image/png")})
    assert response.status_code == 200, f"expected 200 for a photo without a face, found {response.status_code}"
    assert response.json() == {"width": 160, "height": 120, "faces": []}, f"expected no faces, found {response.json()}"


@pytest.mark.slow
def test_a_face_batch_gets_the_models_probabilities_in_order(server, http):
    _, model = server
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    expected = predict(model, faces[..., None].astype(np.float32) / 255)
    as_json = http.post("/predict/faces", json={"faces": faces.tolist()})
    as_bytes = http.post(
        "/predict/faces", content=faces.tobytes(), headers={"content-type": "application/octet-stream"}
    )
    for name, response in [("JSON", as_json), ("bytes", as_bytes)]:
        assert response.status_code == 200, f"{name}: expected 200, found {response.status_code}: {response.text}"
        answers = response.json()["faces"]
        assert len(answers) == 5, f"{name}: expected 5 answers, found {len(answers)}"
        for i, answer in enumerate(answers):
            assert_face_answer(answer, f"{name} face {i}")
        found = np.array([[a["probabilities"][e] for e in EMOTIONS] for a in answers])
        assert np.abs(found - expected).max() < 1e-4, f"{name}: expected the model's {expected}, found {found}"


@pytest.mark.slow
def test_concurrent_requests_each_get_their_own_answer(server):
    """Requests sent at once share model calls (batching); each must still get its own face's answer."""
    import httpx

    url, model = server
    faces = np.random.default_rng(2).integers(0, 256, (24, 48, 48), dtype=np.uint8)
    expected = predict(model, faces[..., None].astype(np.float32) / 255)

    async def ask_all():
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            sizes = [1, 2, 1, 3, 1, 1, 2, 1, 4, 1, 1, 2, 1, 1, 1, 1]  # 24 faces in 16 requests
            starts = np.cumsum([0, *sizes[:-1]])
            replies = await asyncio.gather(
                *(
                    client.post("/predict/faces", json={"faces": faces[s : s + n].tolist()})
                    for s, n in zip(starts, sizes)
                )
            )
            return [a for r in replies for a in r.json()["faces"]]

    answers = asyncio.run(ask_all())
    found = np.array([[a["probabilities"][e] for e in EMOTIONS] for a in answers])
    assert found.shape == expected.shape, f"expected {expected.shape[0]} answers, found {found.shape[0]}"
    assert np.abs(found - expected).max() < 1e-4, "expected each request's own faces' probabilities, found others'"


def chunked_upload_over_the_cap() -> dict:
    """httpx arguments of a multipart photo upload 1 byte over the cap, sent in chunks without a Content-Length."""
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    body = head + b"\xff" * (MAX_UPLOAD_BYTES + 1) + b"\r\n--xyz--\r\n"
    chunks = (body[i : i + 2**16] for i in range(0, len(body), 2**16))
    return {"content": chunks, "headers": {"content-type": "multipart/form-data; boundary=xyz"}}


def photo(data: bytes, name: str = "a.jpg", kind: str = "image/jpeg") -> dict:
    return {"files": {"file": (name, data, kind)}}


def faces_body(body: bytes | str, kind: str) -> dict:
    return {"content": body, "headers": {"content-type": kind}}


#: case → (endpoint, httpx arguments (made when the test runs), status, what the message must name)
BAD_REQUESTS = {
    "garbage bytes": ("/predict/photo", lambda: photo(os.urandom(5000)), 415, "JPEG or PNG"),
    "an empty file": ("/predict/photo", lambda: photo(b""), 415, "JPEG or PNG"),
    "no file field": ("/predict/photo", lambda: {"data": {"photo": "x"}}, 422, "in the field 'file'"),
    "a raw body, not multipart": ("/predict/photo", lambda: {"content": b"\xff\xd8\xff"}, 422, "multipart/form-data"),
    "a 56-megapixel PNG": ("/predict/photo", lambda: photo(png_header(8000, 7000), "a.png", "image/png"), 413,
                           "50 megapixels"),
    "an upload over 10 MB": ("/predict/photo", lambda: photo(b"\xff" * (MAX_UPLOAD_BYTES + 1)), 413,
                             f"at most {MAX_UPLOAD_BYTES} bytes"),
    "a chunked upload over 10 MB": ("/predict/photo", chunked_upload_over_the_cap, 413,
                                    f"at most {MAX_UPLOAD_BYTES} bytes"),
    "faces of the wrong shape": ("/predict/faces", lambda: {"json": {"faces": np.zeros((2, 32, 32)).tolist()}}, 422,
                                 "shape (N, 48, 48)"),
    "NaN faces": ("/predict/faces", lambda: faces_body(json.dumps({"faces": np.full((1, 48, 48), np.nan).tolist()}),
                                                       "application/json"), 422, "NaN"),
    "faces out of range": ("/predict/faces", lambda: {"json": {"faces": np.full((1, 48, 48), 300).tolist()}}, 422,
                           "0-255"),
    "too many faces": ("/predict/faces", lambda: faces_body(bytes(2304 * (MAX_FACES + 1)), "application/octet-stream"),
                       422, f"1 to {MAX_FACES} faces"),
    "faces as text": ("/predict/faces", lambda: faces_body(b"1 2 3", "text/plain"), 415, "application/json"),
    "faces, not JSON": ("/predict/faces", lambda: faces_body(b"{", "application/json"), 400, "not valid JSON"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_a_4xx_naming_what_was_expected_and_the_server_goes_on(http, case):
    path, request, status, expected = BAD_REQUESTS[case]
    response = http.post(path, **request())
    assert response.status_code == status, f"{case}: expected {status}, found {response.status_code}: {response.text}"
    detail = response.json()["detail"]
    assert expected in detail, f"{case}: expected the message to name {expected!r}, found {detail!r}"
    health = http.get("/health")
    assert health.status_code == 200, f"{case}: expected /health to answer after it, found {health.status_code}"


def test_the_photo_expectation_names_formats_and_limits():
    for part in ("JPEG or PNG", "multipart/form-data", "'file'", "10 MB", "50 megapixels"):
        assert part in EXPECTED_PHOTO, f"expected the photo endpoint's expectation to name {part}: {EXPECTED_PHOTO}"
