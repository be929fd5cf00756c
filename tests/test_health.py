from geoservice import create_app


def test_healthz_reports_database_and_postgis_versions(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"]["postgresql"].startswith("PostgreSQL")
    assert body["database"]["postgis"][0].isdigit()


def test_healthz_is_503_json_without_stack_trace_when_database_is_unreachable(tmp_path):
    app = create_app(
        {
            "DATABASE_URL": f"postgresql+psycopg2://nobody@/nowhere?host={tmp_path}",
            "TESTING": True,
            "SECRET_KEY": "x",
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "数据库不可用"
    assert "Traceback" not in response.get_data(as_text=True)


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.is_json and response.get_json()["error"] == "未找到"


def test_while_the_database_is_down_reads_answer_503_with_retry_after(tmp_path):
    """No server behind the socket: an API read is a 503 JSON (数据库不可用, Retry-After), a
    page a Chinese 503 page, never a 500."""
    app = create_app(
        {
            "DATABASE_URL": f"postgresql+psycopg2://nobody@/nowhere?host={tmp_path}",
            "TESTING": True,
            "SECRET_KEY": "x",
        }
    )
    client = app.test_client()
    api = client.get(
        "/api/collections/issues/items", headers={"Authorization": "Bearer gs_not_checked"}
    )
    assert api.status_code == 503 and api.headers["Retry-After"].isdigit()
    assert api.get_json()["error"] == "数据库不可用"
    with client.session_transaction() as cookie:
        cookie["_user_id"] = "1:abc"
    page = client.get("/issues/1")
    assert page.status_code == 503 and page.headers["Retry-After"].isdigit()
    assert "数据库不可用" in page.get_data(as_text=True)
