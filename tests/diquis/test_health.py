"""GET /health answers GET and HEAD only (found by the fuzzer, tests/e2e/test_fuzz_api.py: it answered any
method, which the schema did not allow)."""


def test_health_answers_get_and_head_only(api):
    assert api.get("/health").status_code in {200, 503}
    assert api.head("/health").status_code in {200, 503}
    assert api.post("/health").status_code == 405
    assert api.delete("/health").status_code == 405
