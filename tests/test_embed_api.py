"""The embedding and keyword routes (glm_edge.api.embeddings) on the real app with real ONNX models:
OpenAI /v1/embeddings (also through the official client), GLM-API /embedding and /keyword, and bad input."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from glm_edge.api.app import create_app
from glm_edge.embed import MULTILINGUAL_ID, Embedder, default_embedding_dir, multilingual_default_model
from glm_edge.keywords import KeywordExtractor
from glm_edge.registry import ModelRegistry
from glm_edge.settings import Settings

GLM_KEYWORD_EXAMPLE = {
    "input": "4月25日，周鸿祎微博发文，称今天在北京车展试了试智界S7，空间很大，很舒服，安全性能和零重力也让我印象深刻，"
             "非常适合我这种“后座司机”。我今天就是坐M9来的，老余很早就把车送到360楼下，那么忙还专门打电话问我车收到没有。"
             "我很感动也很感谢。还是那句话，我永远支持老余支持华为，为国产新能车唱赞歌。",
    "model": MULTILINGUAL_ID,
    "vocab": ["华为", "周鸿祎", "360", "新能源车", "智界", "工业", "其他"],
    "top": 5, "mmr": True, "maxsum": True, "diversity": 0.7,
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    minilm = Embedder.load(default_embedding_dir(tmp_path_factory.mktemp("home")), model_id="all-MiniLM-L6-v2",
                           threads=2, max_inputs=16)
    multilingual = Embedder.load(multilingual_default_model(), model_id=MULTILINGUAL_ID, threads=2)
    registry = ModelRegistry(
        embedders={minilm.id: minilm, multilingual.id: multilingual},
        keywords={minilm.id: KeywordExtractor(minilm), multilingual.id: KeywordExtractor(multilingual)},
        loading=False)
    with TestClient(create_app(Settings(), registry=registry)) as c:
        yield c


def _error(response, status: int, *, param: str | None = None, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def test_openai_embeddings_list(client: TestClient) -> None:
    r = client.post("/v1/embeddings", json={"input": ["The food was delicious and the waiter...", "你好，我是谁？"],
                                            "model": "all-MiniLM-L6-v2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    assert [d["index"] for d in body["data"]] == [0, 1] and {d["object"] for d in body["data"]} == {"embedding"}
    vectors = np.array([d["embedding"] for d in body["data"]])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 4


def test_input_forms_and_base64(client: TestClient) -> None:
    text = "token ids or text"
    by_text = client.post("/v1/embeddings", json={"input": text}).json()  # default model: the first loaded
    ids = client.app.state.registry.embedder("all-MiniLM-L6-v2").backend.tokenizer.encode(text).ids
    by_ids = client.post("/v1/embeddings", json={"input": ids}).json()
    by_id_lists = client.post("/v1/embeddings", json={"input": [ids, ids[1:-1]]}).json()
    ref = np.array(by_text["data"][0]["embedding"])
    np.testing.assert_allclose(by_ids["data"][0]["embedding"], ref, atol=1e-5)
    assert len(by_id_lists["data"]) == 2
    np.testing.assert_allclose(by_id_lists["data"][1]["embedding"], ref, atol=1e-5)
    b64 = client.post("/v1/embeddings", json={"input": text, "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, ref, atol=1e-6)


def test_official_openai_client(client: TestClient) -> None:
    from openai import OpenAI

    api = OpenAI(api_key="unused", base_url="http://testserver/v1", http_client=client)
    result = api.embeddings.create(model="all-MiniLM-L6-v2", input=["hello", "world"])  # the client asks for base64
    assert len(result.data) == 2 and len(result.data[0].embedding) == 384
    assert abs(np.linalg.norm(result.data[0].embedding) - 1.0) < 1e-5
    assert result.usage.prompt_tokens == 6


def test_glm_embedding_route_shape(client: TestClient) -> None:
    r = client.post("/embedding", json={"model": MULTILINGUAL_ID, "prompt": ["你好", "hello"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "model", "object"}
    assert body["object"] == "embedding" and body["model"] == MULTILINGUAL_ID
    assert len(body["data"]) == 2 and all(len(v) == 512 and isinstance(v[0], float) for v in body["data"])


def test_glm_keyword_example(client: TestClient) -> None:
    r = client.post("/keyword", json=GLM_KEYWORD_EXAMPLE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"model", "keywords"} and body["model"] == MULTILINGUAL_ID
    assert sorted(k["name"] for k in body["keywords"]) == sorted(["华为", "周鸿祎", "360", "智界"])
    assert all(set(k) == {"name", "similarity"} and 0 < k["similarity"] <= 1 for k in body["keywords"])
    assert all(round(k["similarity"], 4) == k["similarity"] for k in body["keywords"])


def test_keyword_without_vocab_and_defaults(client: TestClient) -> None:
    r = client.post("/keyword", json={"input": "Electric vehicles are getting cheaper as battery prices fall.",
                                      "model": "all-MiniLM-L6-v2", "top": 3})
    assert r.status_code == 200, r.text
    names = [k["name"] for k in r.json()["keywords"]]
    assert len(names) == 3 and any("electric" in n.lower() or "battery" in n.lower() for n in names)


@pytest.mark.parametrize("payload,param,code", [
    ({"input": []}, "input", None),
    ({"input": ""}, "input", None),
    ({"input": ["ok", ""]}, "input", None),
    ({"input": ["x"] * 17}, "input", None),
    ({"input": 5}, None, None),
    ({"input": ["a", 1]}, None, None),
    ({"input": [[1, 2], "a"]}, None, None),
    ({"input": "x", "encoding_format": "hex"}, None, None),
    ({"input": "x", "dimensions": 128}, "dimensions", None),
    ({"input": "x", "dimensions": 0}, None, None),
    ({"input": " ".join(["word"] * 400), "truncate": "error"}, "input", "context_length_exceeded"),
    ({"model": "all-MiniLM-L6-v2"}, None, None),
])
def test_bad_embedding_requests_are_400(client: TestClient, payload: dict, param: str | None, code: str | None) -> None:
    error = _error(client.post("/v1/embeddings", json=payload), 400, param=param, code=code)
    assert error["type"] == "invalid_request_error"


def test_unknown_model_is_404(client: TestClient) -> None:
    for path, payload in [("/v1/embeddings", {"input": "x", "model": "nope"}),
                          ("/embedding", {"model": "nope", "prompt": ["x"]}),
                          ("/keyword", {"input": "some text", "model": "nope"})]:
        error = _error(client.post(path, json=payload), 404, param="model", code="model_not_found")
        assert "nope" in error["message"]


@pytest.mark.parametrize("path,payload", [
    ("/embedding", {"prompt": []}),
    ("/embedding", {"prompt": [""]}),
    ("/embedding", {"prompt": [1]}),
    ("/keyword", {"input": ""}),
    ("/keyword", {"vocab": ["a"]}),
    ("/keyword", {"input": "text", "top": 0}),
    ("/keyword", {"input": "text", "diversity": 2}),
    ("/keyword", {"input": "text", "vocab": ["", "  "]}),
    ("/keyword", {"input": "text", "ngram_range": [3, 1]}),
])
def test_bad_glm_requests_are_400(client: TestClient, path: str, payload: dict) -> None:
    _error(client.post(path, json=payload), 400)


def test_models_listing_includes_keyword_models(client: TestClient) -> None:
    body = client.get("/models").json()
    kinds = {(m["id"], m["object"]) for m in body["data"]}
    assert ("all-MiniLM-L6-v2", "embedding") in kinds and (MULTILINGUAL_ID, "keyword") in kinds


def test_keyword_phrase_fields(client: TestClient) -> None:
    text = "The state of the art in battery chemistry: solid-state batteries promise safer electric cars."
    r = client.post("/keyword", json={"input": text, "model": "all-MiniLM-L6-v2", "top": 20,
                                      "keyphrase_ngram_range": [1, 4], "stop_words": "english"})
    assert r.status_code == 200, r.text
    names = [k["name"] for k in r.json()["keywords"]]
    assert "state of the art" in names and all(n.lower() in text.lower() for n in names)
    r = client.post("/keyword", json={"input": text, "model": "all-MiniLM-L6-v2", "top": 50, "ngram_range": [1, 1],
                                      "stop_words": ["battery", "the"]})
    names = [k["name"] for k in r.json()["keywords"]]
    assert r.status_code == 200 and "battery" not in names and all(" " not in n for n in names)
    for bad in [{"ngram_range": [1, 2], "keyphrase_ngram_range": [1, 3]}, {"stop_words": "klingon"},
                {"keyphrase_ngram_range": [1, 5]}]:
        _error(client.post("/keyword", json={"input": text, **bad}), 400)
